from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import Resolver404, resolve, reverse

from crm.accounts import services, two_step

# Pages a signed-in session may open before its second step: signing in and out, the
# language switch, and every page marked @access.public (the health check, the public
# report form).
OPEN_BEFORE_SECOND_STEP = {"login", "logout", "set_language"}
STEP_PAGES = {
    two_step.VERIFY: ("accounts:two_step_verify",),
    two_step.ENROL: ("accounts:two_step", "accounts:two_step_enrol"),
}
# The session key under which a session remembers that it is mapped to its user.
RECORDED_SESSION_KEY = "kehu_session_recorded"


class TwoStepMiddleware:
    """Sends a signed-in session that owes its second step (two_step.step_owed) to the
    code page or to enrolment, whatever it asked for, Django's admin included; htmx
    requests get a 403 with HX-Redirect. Also keeps `UserSession` up to date when the
    session key changes (login, password change).

    After OTPMiddleware (request.user.is_verified) and django-htmx.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.two_step_owed = None
        if request.user.is_authenticated:
            owed = two_step.step_owed(request)
            if owed is not None:
                request.two_step_owed = owed
                if not self._is_open(request, owed):
                    return self._send_to(request, owed)
        response = self.get_response(request)
        self._record_session(request)
        return response

    @staticmethod
    def _is_open(request: HttpRequest, owed: str) -> bool:
        if request.path_info.startswith(settings.STATIC_URL):
            return True
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return False
        return (
            match.view_name in OPEN_BEFORE_SECOND_STEP
            or match.view_name in STEP_PAGES[owed]
            or getattr(match.func, "kehu_public", False)
        )

    @staticmethod
    def _send_to(request: HttpRequest, owed: str) -> HttpResponse:
        target = reverse(STEP_PAGES[owed][-1 if owed == two_step.ENROL else 0])
        if getattr(request, "htmx", False):
            response = HttpResponse(status=403)
            # A partial polled from the step page itself must not reload it forever.
            current = request.htmx.current_url_abs_path or ""
            if not current.startswith(target):
                response["HX-Redirect"] = target
            return response
        return HttpResponseRedirect(f"{target}?next={quote(request.get_full_path())}")

    @staticmethod
    def _record_session(request: HttpRequest) -> None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return
        session = request.session
        key = session.session_key
        if key and session.get(RECORDED_SESSION_KEY) != key:
            services.session_record(user=user, session_key=key)
            session[RECORDED_SESSION_KEY] = key
