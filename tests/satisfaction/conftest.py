from __future__ import annotations

import pytest


@pytest.fixture
def sms_folder(settings, tmp_path):
    """The development SMS backend records each message here (RecordingSmsBackend)."""
    settings.KEHU_SMS_BACKEND = "crm.channels.backends.RecordingSmsBackend"
    settings.KEHU_SMS_FILE_PATH = str(tmp_path / "sms")
    settings.KEHU_PUBLIC_URL = "https://kehu.example.com"
    return tmp_path / "sms"
