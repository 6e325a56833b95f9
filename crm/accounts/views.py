"""Two-step verification pages: status and settings, enrolment, backup codes, the code
page after the password, and ending one's other sessions."""

from __future__ import annotations

import math
from typing import Any

import django_otp
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

from crm.accounts import services, two_step
from crm.accounts.forms import (
    AdminLoginForm,
    LoginForm,
    PasswordConfirmForm,
    TotpEnrolForm,
    TwoStepVerifyForm,
)
from crm.accounts.models import UserSession
from crm.core import audit


class LoginView(auth_views.LoginView):
    """Django's sign-in; each attempt first reserves its place in the sign-in limits
    (services.login_slots_take), so parallel attempts cannot check more wrong passwords
    than the limits allow. django-axes still locks a username on an address."""

    authentication_form = LoginForm

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = request.POST.get("username", "")
        try:
            slots = services.login_slots_take(
                username=username, address=audit.client_ip(request) or ""
            )
        except services.LoginThrottled as refused:
            audit.record(
                request,
                audit.LOGIN_FAILED,
                username=username,
                outcome=audit.DENIED,
                detail="too many failures from this address"
                if refused.per_address
                else "too many failures for this username on this address",
            )
            return render(
                request,
                "registration/locked_out.html",
                {"per_address": refused.per_address},
                status=429,
            )
        # Set by form_valid / form_invalid. An attempt that raises keeps its slots: it
        # counts as a failure, so an error after the check cannot buy more guesses.
        self.outcome = "unchecked"
        response = super().post(request, *args, **kwargs)
        if self.outcome == "failed" and getattr(request, "axes_locked_out", False):
            self.outcome = "unchecked"  # django-axes refused it before the check
        services.login_slots_settle(slots, outcome=self.outcome)
        return response

    def form_valid(self, form: LoginForm) -> HttpResponse:
        self.outcome = "signed_in"
        return super().form_valid(form)

    def form_invalid(self, form: LoginForm) -> HttpResponse:
        # AuthenticationForm checks the password only when both fields are valid.
        if form.cleaned_data.get("username") and form.cleaned_data.get("password"):
            self.outcome = "failed"
        return super().form_invalid(form)


class AdminLoginView(LoginView):
    """Django admin's sign-in page (/admin/login/, staff only) with the same limits: it
    would otherwise be a second door to the same passwords, where parallel attempts
    meet only django-axes' count. Renders the admin's own template and context."""

    template_name = "admin/login.html"
    authentication_form = AdminLoginForm

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "GET" and admin.site.has_permission(request):
            return redirect("admin:index")
        request.current_app = admin.site.name
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        request = self.request
        context = {
            **super().get_context_data(**kwargs),
            **admin.site.each_context(request),
            "title": _("Log in"),
            "subtitle": None,
            "app_path": request.get_full_path(),
            "username": request.user.get_username(),
        }
        if (
            REDIRECT_FIELD_NAME not in request.GET
            and REDIRECT_FIELD_NAME not in request.POST
        ):
            context[REDIRECT_FIELD_NAME] = reverse("admin:index")
        return context


def _owes_verification(request: HttpRequest) -> bool:
    # The middleware sends such a session to the code page already; checked again here
    # because these pages change the second factor itself.
    return two_step.step_owed(request) == two_step.VERIFY


def _totp_device(user: Any) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def _settings_page(
    request: HttpRequest,
    *,
    codes_form: PasswordConfirmForm | None = None,
    remove_form: PasswordConfirmForm | None = None,
) -> HttpResponse:
    user = request.user
    return render(
        request,
        "accounts/two_step.html",
        {
            "device": _totp_device(user),
            "backup_codes_left": StaticToken.objects.filter(device__user=user).count(),
            "is_required": two_step.is_required(user),
            "codes_form": codes_form or PasswordConfirmForm(request=request),
            "remove_form": remove_form or PasswordConfirmForm(request=request),
            "session_count": UserSession.objects.filter(user=user).count(),
        },
    )


@login_required
@require_http_methods(["GET"])
def two_step_settings(request: HttpRequest) -> HttpResponse:
    if _owes_verification(request):
        return redirect("accounts:two_step_verify")
    return _settings_page(request)


@login_required
@require_http_methods(["GET", "POST"])
def two_step_enrol(request: HttpRequest) -> HttpResponse:
    if _owes_verification(request):
        return redirect("accounts:two_step_verify")
    user = request.user
    if _totp_device(user) is not None:
        messages.info(request, _("你已经设置了两步验证。"))
        return redirect("accounts:two_step")
    key = request.session.get(two_step.PENDING_KEY_SESSION_KEY) or random_hex(20)
    request.session[two_step.PENDING_KEY_SESSION_KEY] = key
    form = TotpEnrolForm(request.POST or None, request=request)
    if request.method == "POST" and form.is_valid():
        try:
            device, codes = services.totp_device_add(
                by=user, key=key, code=form.cleaned_data["code"]
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            request.session.pop(two_step.PENDING_KEY_SESSION_KEY, None)
            django_otp.login(request, device)
            two_step.session_enrolled_reset(request, enrolled=True)
            # A new second factor ends the sessions opened with the password alone.
            services.user_sessions_end(
                by=user, user=user, keep_session_key=request.session.session_key
            )
            return _backup_codes_page(request, codes, just_enrolled=True)
    pending = two_step.totp_device_unsaved(user, key)
    return render(
        request,
        "accounts/two_step_enrol.html",
        {
            "form": form,
            "qr_code": two_step.qr_code_svg(pending),
            "secret": two_step.secret_for_display(pending),
        },
    )


def _backup_codes_page(
    request: HttpRequest, codes: list[str], *, just_enrolled: bool
) -> HttpResponse:
    # Shown once, in the answer to the POST: the codes are not kept anywhere readable.
    return render(
        request,
        "accounts/backup_codes.html",
        {
            "codes": [two_step.backup_code_display(code) for code in codes],
            "just_enrolled": just_enrolled,
        },
    )


@login_required
@require_http_methods(["POST"])
def backup_codes_regenerate(request: HttpRequest) -> HttpResponse:
    if _owes_verification(request):
        return redirect("accounts:two_step_verify")
    if _totp_device(request.user) is None:
        messages.error(request, _("请先设置验证器应用。"))
        return redirect("accounts:two_step")
    form = PasswordConfirmForm(request.POST, request=request)
    if not form.is_valid():
        return _settings_page(request, codes_form=form)
    codes = services.backup_codes_regenerate(by=request.user)
    return _backup_codes_page(request, codes, just_enrolled=False)


@login_required
@require_http_methods(["POST"])
def two_step_remove(request: HttpRequest) -> HttpResponse:
    if _owes_verification(request):
        return redirect("accounts:two_step_verify")
    if not two_step.is_enrolled(request.user):
        messages.info(request, _("你还没有设置两步验证。"))
        return redirect("accounts:two_step")
    form = PasswordConfirmForm(request.POST, request=request)
    if not form.is_valid():
        return _settings_page(request, remove_form=form)
    services.two_step_remove(by=request.user)
    two_step.session_enrolled_reset(request, enrolled=False)
    messages.success(request, _("已移除两步验证。"))
    return redirect("accounts:two_step")


def _safe_next(request: HttpRequest) -> str:
    wanted = request.POST.get("next") or request.GET.get("next", "")
    # Only a path: redirect() takes a bare word ("?next=0001-01-01") for a view name
    # and fails to reverse it (a 500, found by tests/security/test_param_fuzz.py).
    if wanted.startswith("/") and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return resolve_url(settings.LOGIN_REDIRECT_URL)


@login_required
@require_http_methods(["GET", "POST"])
def two_step_verify(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request)
    user = request.user
    if user.is_verified():
        return redirect(next_url)
    if not two_step.is_enrolled(user):
        two_step.session_enrolled_reset(request, enrolled=False)
        return redirect(next_url)
    form = TwoStepVerifyForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            device = services.two_step_verify(user=user, code=form.cleaned_data["code"])
        except services.TwoStepThrottled as exc:
            form.add_error("code", _throttle_message(exc.locked_until))
            status = 429
        else:
            if device is not None:
                django_otp.login(request, device)
                two_step.session_enrolled_reset(request, enrolled=True)
                return redirect(next_url)
            form.add_error(
                "code", _("验证码不正确或已经用过，请输入应用里当前的验证码。")
            )
    return render(
        request,
        "accounts/two_step_verify.html",
        {"form": form, "next": next_url},
        status=status,
    )


def _throttle_message(locked_until: Any) -> str:
    seconds = 1
    if locked_until is not None:
        seconds = max(1, math.ceil((locked_until - timezone.now()).total_seconds()))
    return ngettext(
        "验证码错误次数过多，请 %(seconds)d 秒后再试。",
        "验证码错误次数过多，请 %(seconds)d 秒后再试。",
        seconds,
    ) % {"seconds": seconds}


@login_required
@require_http_methods(["POST"])
def sessions_end_others(request: HttpRequest) -> HttpResponse:
    ended = services.user_sessions_end(
        by=request.user,
        user=request.user,
        keep_session_key=request.session.session_key,
    )
    messages.success(
        request,
        ngettext(
            "已结束其他 %(count)d 个登录会话。",
            "已结束其他 %(count)d 个登录会话。",
            ended,
        )
        % {"count": ended},
    )
    return redirect("accounts:two_step")
