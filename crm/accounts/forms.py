from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from crm.accounts import services
from crm.core import audit


class PasswordConfirmForm(forms.Form):
    """Re-authentication before a change to the second factor (ASVS V7.5.1).

    The password goes through `authenticate` after taking a place in the sign-in limits
    (services.login_slots_take), so wrong passwords count towards the same locks as at
    the login page, and parallel posts from a stolen session check no more of them.
    """

    password = forms.CharField(
        label=_("当前密码"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        self.request = request
        super().__init__(*args, **kwargs)

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        user = self.request.user
        try:
            slots = services.login_slots_take(
                username=user.get_username(),
                address=audit.client_ip(self.request) or "",
            )
        except services.LoginThrottled as refused:
            raise forms.ValidationError(
                _("密码错误次数过多，请稍后再试。"), code="throttled"
            ) from refused
        checked = authenticate(
            self.request, username=user.get_username(), password=password
        )
        is_right = checked is not None and checked.pk == user.pk
        # A right password here signs nobody in: it gives its slots back but, unlike
        # a sign-in, forgives no failures.
        services.login_slots_settle(slots, outcome="right" if is_right else "failed")
        if not is_right:
            raise forms.ValidationError(_("密码不正确。"), code="wrong_password")
        return password


class TotpEnrolForm(PasswordConfirmForm):
    code = forms.CharField(
        label=_("应用显示的 6 位验证码"),
        max_length=10,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}
        ),
    )

    def clean_code(self) -> str:
        code = "".join(self.cleaned_data["code"].split())
        if not (len(code) == 6 and code.isdigit()):
            raise forms.ValidationError(_("请输入 6 位数字。"), code="format")
        return code


class TwoStepVerifyForm(forms.Form):
    code = forms.CharField(
        label=_("验证码或备用码"),
        max_length=20,
        help_text=_("验证器应用里的 6 位数字；手机不在身边时，输入一个备用码。"),
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True}
        ),
    )


class LoginForm(AuthenticationForm):
    """Django's login form sets the username's max_length after building the field, so
    it is only an HTML attribute; a 10,000-character name went on to django-axes, whose
    column (255) refused it with a 500. Here the length is validated."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        username = self.fields["username"]
        username.validators.append(MaxLengthValidator(username.max_length))


class AdminLoginForm(AdminAuthenticationForm):
    """Django admin's login form (staff only), with LoginForm's username length check."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        username = self.fields["username"]
        username.validators.append(MaxLengthValidator(username.max_length))
