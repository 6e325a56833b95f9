"""Mainland mobile and landline numbers, normalised to one form for uniqueness and search."""

from __future__ import annotations

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from customers.search import FULL_WIDTH

# The phone columns (CustomerPhone.number, Customer.phone, Ticket.contact_phone) hold 20.
MAX_LENGTH = 20


def normalise_phone(raw: str) -> tuple[str, str]:
    """('13812345678', 'mobile') or ('01088886666', 'landline'); ValidationError if bad.

    Accepts full-width digits, spaces, dashes and a +86 prefix.
    """
    text = raw.translate(FULL_WIDTH).strip()
    try:
        parsed = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(
            _("“%(raw)s”不是有效的电话号码。") % {"raw": raw}
        ) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(_("“%(raw)s”不是有效的电话号码。") % {"raw": raw})
    if parsed.country_code != 86:
        return phonenumbers.format_number(
            parsed, phonenumbers.PhoneNumberFormat.E164
        ), "mobile"
    national = (
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        .replace(" ", "")
        .replace("-", "")
    )
    if len(national) > MAX_LENGTH:
        # A long extension ("ext 1234567") would not fit the column: a 500 on saving.
        raise ValidationError(_("“%(raw)s”的分机号太长。") % {"raw": raw})
    kind = (
        "mobile"
        if phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE
        else "landline"
    )
    return national, kind
