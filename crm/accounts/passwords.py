"""A password validator for words anyone guessing at Kehu would try first."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

CONTEXT_WORDS = ("kehu", "客户", "crm", "password", "mima", "123456", "qwerty")


class ContextWordsValidator:
    def validate(self, password: str, user: Any = None) -> None:
        lowered = password.lower()
        for word in CONTEXT_WORDS:
            if word in lowered:
                raise ValidationError(
                    _("密码不能包含“%(word)s”这类容易被猜到的词。") % {"word": word},
                    code="password_context_word",
                )

    def get_help_text(self) -> str:
        return _("密码不能包含公司名、产品名（kehu、客户、crm）等容易被猜到的词。")
