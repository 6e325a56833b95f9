"""Resident ID numbers (身份证): validated, encrypted at rest, unique through a blind index.

The key comes from KEHU_FIELD_KEY (outside the database); see docs/security.md for
rotation. The HMAC index lets the database refuse a second customer with the same number
without ever storing the number in clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from stdnum.cn import ric
from stdnum.exceptions import ValidationError as StdnumError

from customers.search import FULL_WIDTH


def _key_bytes() -> bytes:
    return hashlib.sha256(settings.KEHU_FIELD_KEY.encode()).digest()


def _fernet() -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_key_bytes()))


def normalise_id_number(raw: str) -> str:
    text = raw.translate(FULL_WIDTH).strip().upper().replace(" ", "")
    try:
        return ric.validate(text)
    except StdnumError as exc:
        raise ValidationError(_("身份证号码无效，请核对（含校验位）。")) from exc


def blind_index(number: str) -> str:
    return hmac.new(_key_bytes(), b"id:" + number.encode(), hashlib.sha256).hexdigest()


def encrypt(number: str) -> str:
    return _fernet().encrypt(number.encode()).decode()


def decrypt(cipher: str) -> str:
    return _fernet().decrypt(cipher.encode()).decode()


def mask(number: str) -> str:
    """1101**********1234: the region's first four and the last four characters."""
    return number[:4] + "*" * (len(number) - 8) + number[-4:]
