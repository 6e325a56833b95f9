"""A form posted twice (a double click, a resent page) saves one record.

Every guarded form carries a random one-time token in a hidden field
(`{% submit_once_field form %}`, or `form|with_submit_once` for a form crispy renders
with its own <form> tag). `@submit_once` on the view records the token in
`FormSubmission`, whose token is unique, in the same transaction as the view's writes:

* of two posts with one token, the second waits on the unique index until the first
  commits, then finds the token taken and is sent where the first went, with
  "已提交过，未重复保存"; it writes nothing;
* a post that fails (the form comes back with errors, a 4xx, an exception) rolls the
  token back with everything else, so the user fixes the field and posts the same
  token again;
* a post without a token (an old page, a script) is served unguarded, as before.

Tokens cost no query to hand out: any well-formed token is accepted once. They are
kept `KEEP_DAYS` and purged daily (`crm.core.tasks.form_submissions_purge_task`), so
a page resent after that saves again.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from django.contrib import messages
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.core.db import retry_transient
from crm.core.models import FormSubmission

FIELD = "once_token"
KEEP_DAYS = 7
_WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{16,64}")
# Answers that mean the post was accepted besides a redirect (htmx partial updates).
_HTMX_DONE_HEADERS = ("HX-Trigger", "HX-Redirect", "HX-Location")


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_for(form: Any) -> str:
    """The token a rendered form carries: the one it was posted with when it comes
    back with errors (fixing a field and posting again is the same submission), a new
    one for a fresh form."""
    posted = form.data.get(FIELD, "") if getattr(form, "is_bound", False) else ""
    return (
        posted
        if isinstance(posted, str) and _WELL_FORMED.fullmatch(posted)
        else new_token()
    )


class _Taken(Exception):
    pass


class _Undone(Exception):
    def __init__(self, response: HttpResponse) -> None:
        super().__init__()
        self.response = response


def submit_once(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Put innermost, below the access decorators: refused users never reach it."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        token = request.POST.get(FIELD, "") if request.method == "POST" else ""
        if not _WELL_FORMED.fullmatch(token):
            return view(request, *args, **kwargs)
        user = request.user if request.user.is_authenticated else None

        # The view's services run inside this transaction, so a deadlock or a
        # serialization failure is retried here, around the whole submission.
        @retry_transient
        def submission() -> HttpResponse:
            with transaction.atomic():
                claim = _claim(token, user)
                response = view(request, *args, **kwargs)
                if not _accepted(response):
                    raise _Undone(response)
                claim.result_url = _result_url(response)[:500]
                claim.save(update_fields=["result_url"])
            return response

        try:
            response = submission()
        except _Undone as undone:
            return undone.response
        except _Taken:
            return _already_submitted(request, token, user)
        return response

    return guarded


def _claim(token: str, user: Any) -> FormSubmission:
    try:
        # Its own savepoint: the outer transaction stays usable to answer.
        with transaction.atomic():
            return FormSubmission.objects.create(token=token, user=user)
    except IntegrityError as error:
        raise _Taken from error


def _accepted(response: HttpResponse) -> bool:
    if 300 <= response.status_code < 400:
        return True
    return response.status_code < 300 and any(
        header in response.headers for header in _HTMX_DONE_HEADERS
    )


def _result_url(response: HttpResponse) -> str:
    for header in ("Location", "HX-Redirect", "HX-Location"):
        if header in response.headers:
            return response.headers[header]
    return ""


def _already_submitted(request: HttpRequest, token: str, user: Any) -> HttpResponse:
    note = _("已提交过，未重复保存。")
    if request.headers.get("HX-Request"):
        # The first answer already replaced the form; leave the page as it is.
        response = HttpResponse(note)
        response["HX-Reswap"] = "none"
        return response
    first = FormSubmission.objects.filter(token=token).first()
    if first and first.result_url and first.user_id == getattr(user, "pk", None):
        messages.info(request, note)
        return redirect(first.result_url)
    return render(request, "core/submitted_once.html", {"note": note}, status=409)


def form_submissions_purge(*, now: datetime | None = None) -> int:
    """Delete tokens older than KEEP_DAYS; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(days=KEEP_DAYS)
    deleted, _by_model = FormSubmission.objects.filter(created_at__lt=cutoff).delete()
    return deleted
