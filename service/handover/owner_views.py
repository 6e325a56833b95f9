"""The owner's booking pages behind their personal link (mobile-first, Chinese, no
login): see the unit and the batch's free slots, book, change or cancel until the
cut-off, and show the check-in QR code at the desk.

The link is the key (service/handover/links.py): every page opens it first, and a
link that opens nothing answers 404 (tampered) or 410 (expired, revoked) with a page
that says why. Every POST counts against the client address's hourly limit.
The services enforce the rules (ownership, eligibility, batch window, walk-in hold,
cut-off, one booking per unit, capacity); these views only show their refusals.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from functools import wraps
from typing import Any

import segno
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.core import bounds, limits, network
from service.handover import checkin_codes, links, services
from service.handover import owner_selectors as selectors
from service.handover.models import OwnerLink
from service.handover.owner_forms import OwnerBookForm, OwnerCancelForm, OwnerChangeForm

TOKEN_MAX = 300
HOUR = dt.timedelta(hours=1)
DONE = {
    "booked": gettext_lazy("预约成功！请按时到场，并向工作人员出示下方签到二维码。"),
    "changed": gettext_lazy("改约成功！签到二维码不变。"),
    "cancelled": gettext_lazy("已取消预约。如需重新预约，请在下方选择时段。"),
}


def _page_url(token: str, done: str = "") -> str:
    url = reverse("owner_booking", args=[token])
    return f"{url}?done={done}" if done else url


def owner_link(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Count a POST against the address's limit, then open the link; the view gets
    the live link, anything else gets the page that explains why not.

    Only writes are counted (as on the public follow page): a page view reads, and a
    guessed token costs one signature check and no query, while counting every view
    would add a committed write to each one (the heaviest statement of the page)."""

    @wraps(view)
    def wrapper(request: HttpRequest, token: str) -> HttpResponse:
        if request.method == "POST":
            address = network.client_ip(request) or ""
            limit = settings.KEHU_OWNER_PER_IP_HOUR
            if not limits.take("owner-ip", address, limit=limit, window=HOUR):
                return render(request, "handover/owner/too_many.html", status=429)
        try:
            if len(token) > TOKEN_MAX or not token.isprintable():
                raise links.LinkError("invalid")
            link = links.open_link(token)
        except links.LinkError as error:
            gone = error.reason in ("expired", "revoked")
            return render(
                request,
                "handover/owner/link_error.html",
                {
                    "reason": error.reason,
                    "desk_phone": settings.KEHU_HANDOVER_DESK_PHONE,
                },
                status=410 if gone else 404,
            )
        selectors.touch(link, timezone.now())
        return view(request, link, token)

    return wrapper


def _refusal(error: Exception) -> str:
    """A service's refusal as the sentence the owner reads."""
    if isinstance(error, services.BookingError):
        return error.message
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return _("此链接不能为该房间办理预约，请联系客服。")


def _page(link: OwnerLink, *, with_slots: bool) -> dict[str, Any]:
    return selectors.owner_page(link, now=timezone.now(), with_slots=with_slots)


def _choices(context: dict[str, Any]) -> list[selectors.SlotChoice]:
    return [choice for _day, rows in context.get("days", []) for choice in rows]


def _render(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    token: str,
    *,
    status: int = 200,
    **extra: Any,
) -> HttpResponse:
    context.update(token=token, **extra)
    appointment = context["appointment"]
    if appointment is not None:
        context["check_in_code"] = checkin_codes.code_for(appointment.pk)
    return render(request, template, context, status=status)


def _fresh_after_refusal(
    link: OwnerLink, context: dict[str, Any], status: int
) -> dict[str, Any]:
    """After a refusal the seats have moved: the page shows them as they are now."""
    return _page(link, with_slots="days" in context) if status == 409 else context


@access.public
@never_cache
@require_http_methods(["GET", "POST"])
@owner_link
def owner_booking(request: HttpRequest, link: OwnerLink, token: str) -> HttpResponse:
    """The unit, its booking or the free slots; a POST books the chosen slot."""
    context = _page(link, with_slots=True)
    form = OwnerBookForm(
        request.POST if request.method == "POST" else None, choices=_choices(context)
    )
    error, status = "", 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.appointment_book(
                    slot=form.cleaned_data["slot"],
                    customer=link.holder,
                    by=None,
                    party_size=form.cleaned_data["party_size"],
                    channel="owner_link",
                    event_unit=link.event_unit,
                    via_link=link,
                )
            except (services.BookingError, ValidationError, PermissionDenied) as exc:
                error, status = _refusal(exc), 409
            else:
                return redirect(_page_url(token, "booked"))
        else:
            status = 400
    done = bounds.params(request).choice("done", DONE)
    return _render(
        request,
        "handover/owner/booking.html",
        _fresh_after_refusal(link, context, status),
        token,
        status=status,
        form=form,
        error=error,
        done_message=DONE.get(done, ""),
    )


@access.public
@never_cache
@require_http_methods(["GET", "POST"])
@owner_link
def owner_change(request: HttpRequest, link: OwnerLink, token: str) -> HttpResponse:
    """Pick another slot for the unit's booking."""
    context = _page(link, with_slots=True)
    appointment = context["appointment"]
    if appointment is None:
        return redirect(_page_url(token))
    form = OwnerChangeForm(
        request.POST if request.method == "POST" else None,
        choices=_choices(context),
        initial={"version": appointment.version},
    )
    error, status = "", 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.appointment_reschedule(
                    appointment,
                    new_slot=form.cleaned_data["slot"],
                    by=None,
                    via_link=link,
                    version=form.cleaned_data["version"],
                )
            except (services.BookingError, ValidationError, PermissionDenied) as exc:
                error, status = _refusal(exc), 409
            else:
                return redirect(_page_url(token, "changed"))
        else:
            status = 400
    return _render(
        request,
        "handover/owner/change.html",
        _fresh_after_refusal(link, context, status),
        token,
        status=status,
        form=form,
        error=error,
    )


@access.public
@never_cache
@require_http_methods(["GET", "POST"])
@owner_link
def owner_cancel(request: HttpRequest, link: OwnerLink, token: str) -> HttpResponse:
    """Confirm, then cancel the unit's booking."""
    context = _page(link, with_slots=False)
    appointment = context["appointment"]
    if appointment is None:
        return redirect(_page_url(token))
    form = OwnerCancelForm(request.POST if request.method == "POST" else None)
    error, status = "", 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.appointment_cancel(
                    appointment,
                    by=None,
                    via_link=link,
                    version=form.cleaned_data["version"],
                )
            except (services.BookingError, ValidationError, PermissionDenied) as exc:
                error, status = _refusal(exc), 409
            else:
                return redirect(_page_url(token, "cancelled"))
        else:
            error, status = _("页面已过期，请返回后重试。"), 400
    return _render(
        request,
        "handover/owner/cancel.html",
        _fresh_after_refusal(link, context, status),
        token,
        status=status,
        error=error,
    )


@access.public
@never_cache
@require_http_methods(["GET"])
@owner_link
def owner_qr(request: HttpRequest, link: OwnerLink, token: str) -> HttpResponse:
    """The check-in QR code of the unit's booking, as a PNG (404 without one)."""
    appointment = selectors.unit_booking(link.event_unit)
    if appointment is None:
        raise Http404
    image = io.BytesIO()
    segno.make(checkin_codes.desk_url_for(appointment.pk), error="m").save(
        image, kind="png", scale=6, border=4
    )
    return HttpResponse(image.getvalue(), content_type="image/png")
