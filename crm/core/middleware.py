from __future__ import annotations

import time
from collections.abc import Callable

import pghistory
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.utils import translation


class LanguageMiddleware:
    """Chinese unless the user chose otherwise with the navbar switch.

    Unlike Django's LocaleMiddleware this ignores the browser's Accept-Language: Kehu's
    users work on company PCs whose browsers are often set to English, and the product
    is Chinese first. The switch (django.views.i18n.set_language) sets the cookie.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.supported = {code for code, _ in settings.LANGUAGES}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
        language = chosen if chosen in self.supported else settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = language
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        return response


class SessionLimitsMiddleware:
    """An absolute session lifetime on top of the idle timeout, and no caching of pages
    that show customer data (ASVS V7.3, V14.3.2)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = int(time.time())
            started = request.session.setdefault("kehu_login_at", now)
            if now - started > settings.KEHU_SESSION_ABSOLUTE_SECONDS:
                logout(request)
                return redirect_to_login(request.get_full_path())
        response = self.get_response(request)
        if user is not None and user.is_authenticated:
            response.headers.setdefault("Cache-Control", "no-store")
        return response


class RequestIdMiddleware:
    """Gives each request an id (`request.request_id`, echoed as X-Request-ID) that the
    audit rows and log records of the request carry, and keeps the request at hand for
    `crm.core.audit.record` in code that has none (services, the access layer).

    An id sent by the client is not trusted: it would let one forge another's trail.
    First in MIDDLEWARE, so every response, even an early refusal, carries the id.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from crm.core import audit

        request.request_id = audit.new_request_id()
        token = audit._current_request.set(request)
        try:
            # The change history (pghistory) of this request carries the same request
            # id and client IP as its security audit rows; HistoryMiddleware, further
            # in, adds the user and URL to this same context.
            with pghistory.context(
                request_id=request.request_id, ip=audit.client_ip(request)
            ):
                response = self.get_response(request)
            denial = getattr(request, "audit_pending_denial", None)
            if denial is not None:
                audit.write_denial(request, denial)
        finally:
            audit._current_request.reset(token)
        response.headers["X-Request-ID"] = request.request_id
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        """A 403 that the access layer did not record itself (a service's permission
        check) is recorded here, so every refusal by role leaves a row."""
        from django.core.exceptions import PermissionDenied

        from crm.core import audit

        if isinstance(exception, PermissionDenied) and not getattr(
            request, "audit_denial_recorded", False
        ):
            audit.record_denial(request, audit.DENIED_ROLE)


class TransientConflictMiddleware:
    """A deadlock or serialization failure that survived the services' retries
    (crm.core.db.retry_transient) is a busy database, not a bug: the user is told to
    send the form again (503, Retry-After) and nothing was saved, rather than a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        from django.shortcuts import render

        from crm.core.db import is_transient

        if not is_transient(exception):
            return None
        response = render(request, "503_busy.html", status=503)
        response["Retry-After"] = "2"
        return response


class DatabaseUnavailableMiddleware:
    """A request that cannot get a database connection (refused, timed out, too many
    clients, a pool with none to give) answers 503 with Retry-After and a short page,
    and logs one warning line, not an ERROR with a traceback per request: under a
    burst that exhausts the connections that would be a storm of them, for a state
    that is not a bug and passes by itself.

    The connection is opened here, before any middleware reads the session, so that a
    refusal is answered the same way whatever page was asked for and with DEBUG on; a
    connection lost later in the request comes back through process_exception (views)
    or crm.core.views.error_500 (other middleware). /healthz answers for itself.
    After the language middleware (the page is translated), before every middleware
    that reads the database.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.db import DatabaseError, connection
        from django.urls import reverse

        from crm.core.db import is_unavailable

        if request.path_info != reverse("healthz"):
            try:
                connection.ensure_connection()
            except DatabaseError as error:
                if not is_unavailable(error):
                    raise
                return database_unavailable_response(request, error)
        return self.get_response(request)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        from crm.core.db import is_unavailable

        if not is_unavailable(exception):
            return None
        return database_unavailable_response(request, exception)


RETRY_AFTER_SECONDS = 5


def database_unavailable_response(
    request: HttpRequest, error: BaseException
) -> HttpResponse:
    """The 503 page; rendered without the request's context processors, which would
    read the database."""
    import logging

    from django.template.loader import render_to_string

    # Once per request: an outer middleware that then fails too (the session saved on
    # the way out) ends up here again, with "the connection is closed".
    if not getattr(request, "database_unavailable_logged", False):
        request.database_unavailable_logged = True
        lines = str(error.__cause__ or error).strip().splitlines()
        logging.getLogger("kehu.db").warning(
            "kehu.db database unavailable, 503 for %s %s: %s",
            request.method,
            request.path,
            lines[0][:200] if lines else type(error).__name__,
        )
    response = HttpResponse(render_to_string("503_unavailable.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    # Logged above, once and without a traceback: Django would add an ERROR line.
    response._has_been_logged = True
    return response
