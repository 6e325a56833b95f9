"""The event's notices (入伙通知书): start a run, follow its progress, the notices sent,
owners' links and their revocation, and the printable PDF (docs/handover.md,
"Notices"). Every staff role sees these pages; managers and admins act."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from crm.core import audit, bounds
from crm.core.once import submit_once
from crm.core.pagination import paginate
from customers import masking
from service.handover import notice_pdf, notices, selectors
from service.handover.models import (
    EventUnit,
    HandoverEvent,
    Notice,
    NoticeRun,
    OwnerLink,
)
from service.handover.notice_forms import LettersDeliveredForm, NoticeRunForm

STAFF_ROLES = tuple(Role.values)
NOTICE_ROLES = notices.NOTICE_ROLES
PAGE_SIZE = 50
LINKS_PAGE_SIZE = 25


def _event(request: HttpRequest, pk: Any) -> HandoverEvent:
    return access.get_object_for(selectors.events_for(request.user), pk)


def _run(request: HttpRequest, pk: Any) -> NoticeRun:
    runs = NoticeRun.objects.filter(
        event__in=selectors.events_for(request.user)
    ).select_related("event", "batch")
    return access.get_object_for(runs, pk)


def _notices_url(event: HandoverEvent) -> str:
    return reverse("handover:notice_list", args=[event.pk])


@require_http_methods(["GET"])
@access.role_required(*STAFF_ROLES)
def notice_list(request: HttpRequest, pk: int) -> HttpResponse:
    event = _event(request, pk)
    params = bounds.params(request)
    filters = {
        "batch_id": params.id("batch"),
        "state": params.choice("state", Notice.State.values),
        "channel": params.choice("channel", NoticeRun.Channel.values),
        "run_id": params.id("run"),
    }
    page = paginate(
        notices.notice_list(event=event, **filters), params.page(), PAGE_SIZE
    )
    can_send = notices.may_send(request.user)
    context = {
        "event": event,
        "runs": notices.event_runs(event),
        "page": page,
        "filters": filters,
        "batches": list(event.batches.order_by("booking_opens_at", "id")),
        "states": Notice.State.choices,
        "channels": NoticeRun.Channel.choices,
        "can_send": can_send,
        "can_see_pii": masking.can_see_pii(request.user),
        "form": NoticeRunForm(event=event) if can_send else None,
        "delivered_form": LettersDeliveredForm() if can_send else None,
    }
    return render(request, "handover/notices/notice_list.html", context)


@require_http_methods(["POST"])
@access.role_required(*NOTICE_ROLES)
@submit_once
def notice_run_start(request: HttpRequest, pk: int) -> HttpResponse:
    """Two steps: the first post shows how many owners will be notified, the second
    (with `confirm`) starts the run."""
    event = _event(request, pk)
    form = NoticeRunForm(request.POST, event=event)
    context: dict[str, Any] = {"event": event, "form": form}
    if form.is_valid():
        data = form.cleaned_data
        if request.POST.get("confirm") == "1":
            try:
                run = notices.notice_run_start(by=request.user, event=event, **data)
            except ValidationError as error:
                messages.error(request, " ".join(error.messages))
                return redirect(_notices_url(event))
            messages.success(
                request,
                _("通知任务已开始（共 %(n)s 户），可以离开本页，发送在后台继续。")
                % {"n": run.total},
            )
            return redirect(_notices_url(event))
        context["preview"] = notices.notice_run_preview(event=event, **data)
        context["data"] = data
        context["channel_label"] = NoticeRun.Channel(data["channel"]).label
    status = 200 if form.is_valid() else 400
    return render(
        request, "handover/notices/notice_run_confirm.html", context, status=status
    )


@require_http_methods(["GET"])
@access.role_required(*STAFF_ROLES)
def notice_run_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The run's row that the page polls (htmx, every second) while it runs."""
    run = _run(request, pk)
    notices.notice_run_kick(run=run)
    run.refresh_from_db()
    notices.run_counts([run])
    context = {
        "run": run,
        "event": run.event,
        "can_send": notices.may_send(request.user),
        "delivered_form": LettersDeliveredForm(),
    }
    return render(request, "handover/notices/_run_progress.html", context)


@require_http_methods(["POST"])
@access.role_required(*NOTICE_ROLES)
def letters_delivered(request: HttpRequest, pk: int) -> HttpResponse:
    """Record that the run's posted letters arrived, on the date given."""
    run = _run(request, pk)
    form = LettersDeliveredForm(request.POST)
    if run.channel != NoticeRun.Channel.LETTER:
        messages.error(request, _("只有纸质信函需要登记送达。"))
    elif not form.is_valid():
        messages.error(request, " ".join(e for es in form.errors.values() for e in es))
    else:
        try:
            marked = notices.letters_mark_delivered(
                by=request.user,
                notices=run.notices.all(),
                delivered_on=form.cleaned_data["delivered_on"],
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("已登记 %(n)s 封信函送达。") % {"n": marked})
    return redirect(_notices_url(run.event))


@require_http_methods(["GET"])
@access.role_required(*NOTICE_ROLES)
def notice_run_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """The letters of a finished letter run, one page per unit. Owners' names and
    their booking links (which book for the unit): for the roles that send, audited."""
    run = _run(request, pk)
    path = notice_pdf.run_pdf_path(run)
    if run.channel != NoticeRun.Channel.LETTER or not path.exists():
        raise Http404
    audit.record(
        request,
        audit.CUSTOMER_VIEWED,
        obj=run,
        row_count=run.done,
        detail=f"入伙通知书 PDF, event {run.event_id}",
    )
    return FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=f"入伙通知书-{run.pk}.pdf",
        content_type="application/pdf",
    )


@require_http_methods(["POST"])
@access.role_required(*NOTICE_ROLES)
def unit_notice_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """One unit's 入伙通知书 (a post: it may make the owner's personal link)."""
    event_unit = access.get_object_for(
        EventUnit.objects.filter(
            event__in=selectors.events_for(request.user)
        ).select_related("event", "unit__building", "batch"),
        pk,
    )
    data = notice_pdf.unit_pdf(by=request.user, event_unit=event_unit)
    audit.record(
        request,
        audit.CUSTOMER_VIEWED,
        obj=event_unit,
        row_count=1,
        detail=f"入伙通知书 PDF, event {event_unit.event_id}",
    )
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="notice-{event_unit.unit.code}.pdf"'
    )
    return response


@require_http_methods(["GET"])
@access.role_required(*STAFF_ROLES)
def owner_links(request: HttpRequest, pk: int) -> HttpResponse:
    event = _event(request, pk)
    params = bounds.params(request)
    batch_id, query = params.id("batch"), params.search()
    page = paginate(
        notices.link_units(event=event, batch_id=batch_id, query=query),
        params.page(),
        LINKS_PAGE_SIZE,
    )
    page.object_list = list(page.object_list)
    notices.links_of(page.object_list)
    context = {
        "event": event,
        "page": page,
        "batch_id": batch_id,
        "query": query,
        "batches": list(event.batches.order_by("booking_opens_at", "id")),
        "can_send": notices.may_send(request.user),
        "can_see_pii": masking.can_see_pii(request.user),
    }
    return render(request, "handover/notices/owner_links.html", context)


@require_http_methods(["POST"])
@access.role_required(*NOTICE_ROLES)
def owner_link_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    link = access.get_object_for(
        OwnerLink.objects.filter(
            event_unit__event__in=selectors.events_for(request.user)
        ).select_related("event_unit", "holder"),
        pk,
    )
    if notices.owner_link_revoke(by=request.user, link=link):
        messages.success(
            request,
            _("已撤销 %(holder)s 的预约链接；旧链接不能再打开。")
            % {"holder": link.holder.name},
        )
    else:
        messages.info(request, _("该链接已撤销或已过期。"))
    return redirect("handover:owner_links", link.event_unit.event_id)
