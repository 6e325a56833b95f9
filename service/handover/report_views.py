"""入伙 reports (reports.py): the daily report, the rectification board, the refusal
and no-show lists and the not-accepted list (with each re-inspection booking), each
with its XLSX (`?export=xlsx`), and the acceptance form PDF.
Managers and admins, over the events they see; the acceptance form also for the
service staff who handled the case."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.core import audit, bounds
from crm.core.pagination import paginate
from customers import masking
from service.handover import acceptance_pdf, report_exports, reports, selectors
from service.handover.models import HandoverEvent
from service.handover.onsite_models import RefusalRecord, UnitHandover
from service.handover.report_forms import BoardFilterForm, ReportDayForm

PAGE_SIZE = 50


def _event(request: HttpRequest, pk: Any) -> HandoverEvent:
    return access.get_object_for(selectors.events_for(request.user), pk)


def _wants_xlsx(request: HttpRequest) -> bool:
    return bounds.params(request).choice("export", ("xlsx",)) == "xlsx"


def _download(request: HttpRequest, rows: list, *, table: str, title: str, obj: Any):
    report_exports.record(request, table=table, count=max(len(rows) - 1, 0), obj=obj)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return FileResponse(
        report_exports.xlsx(rows, title=title),
        as_attachment=True,
        filename=f"{table}-{stamp}.xlsx",
        content_type=report_exports.XLSX,
    )


def _case_list(
    request: HttpRequest,
    event: HandoverEvent,
    found: Any,
    *,
    export: tuple[Any, str, str],
    template: str,
    **context: Any,
) -> HttpResponse:
    """One of the event's case lists: its XLSX (`export` = row builder, file name,
    sheet title) when asked, else its page."""
    if _wants_xlsx(request):
        build_rows, table, title = export
        rows = build_rows(found, user=request.user)
        return _download(
            request, rows, table=f"{table}-{event.pk}", title=title, obj=event
        )
    context |= {
        "event": event,
        "page": paginate(found, bounds.params(request).page(), PAGE_SIZE),
        "can_see_pii": masking.can_see_pii(request.user),
    }
    return render(request, f"handover/reports/{template}.html", context)


@require_http_methods(["GET"])
@access.role_required(*reports.REPORT_ROLES)
def daily_report(request: HttpRequest, pk: int) -> HttpResponse:
    """交楼日报表: ?day=YYYY-MM-DD within the event's dates (a form error outside)."""
    event = _event(request, pk)
    form = ReportDayForm(request.GET or None, event=event)
    day = reports.report_day(event)
    if form.is_bound:
        if not form.is_valid():
            context = {"event": event, "form": form, "report": None}
            return render(
                request, "handover/reports/daily_report.html", context, status=400
            )
        day = form.cleaned_data["day"] or day
    report = reports.daily_report(event, day)
    if _wants_xlsx(request):
        return _download(
            request,
            report_exports.daily_rows(report),
            table=f"daily-{event.pk}-{day:%Y%m%d}",
            title=_("交楼日报表"),
            obj=event,
        )
    if not form.is_bound:
        form = ReportDayForm(initial={"day": day}, event=event)
    context = {"event": event, "form": form, "report": report}
    return render(request, "handover/reports/daily_report.html", context)


@require_http_methods(["GET"])
@access.role_required(*reports.REPORT_ROLES)
def rectification_board(request: HttpRequest) -> HttpResponse:
    """整改看板: figures, contractors, ageing, and the open items (keyset pages:
    ?after=<the last item's id>); ?export=xlsx&table=contractors|items."""
    events = selectors.events_for(request.user)
    form = BoardFilterForm(request.GET or None, events=events)
    if form.is_bound and not form.is_valid():
        context = {"form": form, "board": None}
        return render(
            request, "handover/reports/rectification_board.html", context, status=400
        )
    data = form.cleaned_data if form.is_bound else {}
    defects = reports.board_defects(
        request.user,
        event=data.get("event"),
        contractor=data.get("contractor"),
        severity=data.get("severity") or "",
    )
    now = timezone.now()
    params = bounds.params(request)
    if _wants_xlsx(request):
        table = params.choice("table", ("contractors", "items"), default="contractors")
        if table == "items":
            rows = report_exports.board_item_rows(defects, now)
            title = _("整改清单")
        else:
            rows = report_exports.board_contractor_rows(
                reports.rectification_board(defects, now=now)
            )
            title = _("整改看板")
        return _download(
            request, rows, table=f"rectification-{table}", title=title, obj=None
        )
    after_id = params.id("after")
    after = None
    if after_id is not None:
        after = access.get_object_for(defects, after_id)
    items, next_after = reports.board_items(defects, after=after)
    query = {
        key: value
        for key, value in (
            ("event", data.get("event") and data["event"].pk),
            ("contractor", data.get("contractor") and data["contractor"].pk),
            ("severity", data.get("severity")),
        )
        if value
    }
    context = {
        "form": form,
        "board": reports.rectification_board(defects, now=now),
        "items": items,
        "next_after": next_after,
        "after": after,
        "now": now,
        "query": "&".join(f"{k}={v}" for k, v in query.items()),
        "event": data.get("event"),
    }
    return render(request, "handover/reports/rectification_board.html", context)


@require_http_methods(["GET"])
@access.role_required(*reports.REPORT_ROLES)
def refusal_list(request: HttpRequest, pk: int) -> HttpResponse:
    """拒收楼房号一览表 and the reasons' counts; ?reason= narrows."""
    event = _event(request, pk)
    params = bounds.params(request)
    reason = params.choice("reason", RefusalRecord.Reason.values)
    found = reports.refusals(event, reason=reason)
    return _case_list(
        request,
        event,
        found,
        export=(report_exports.refusal_rows, "refusals", _("拒收楼房号一览表")),
        template="refusal_list",
        reason=reason,
        reasons=RefusalRecord.Reason.choices,
        pareto=reports.refusal_reasons(event),
    )


@require_http_methods(["GET"])
@access.role_required(*reports.REPORT_ROLES)
def no_show_list(request: HttpRequest, pk: int) -> HttpResponse:
    """未到访 cases and their next step; ?next=second_notice|scattered|none."""
    event = _event(request, pk)
    params = bounds.params(request)
    next_step = params.choice(
        "next", [*UnitHandover.NoShowNext.values, "none"], default=""
    )
    found = reports.no_shows(event, next_step=next_step)
    return _case_list(
        request,
        event,
        found,
        export=(report_exports.no_show_rows, "no-shows", _("未到访一览表")),
        template="no_show_list",
        next_step=next_step,
        next_steps=UnitHandover.NoShowNext.choices,
    )


@require_http_methods(["GET"])
@access.role_required(*reports.REPORT_ROLES)
def not_accepted_list(request: HttpRequest, pk: int) -> HttpResponse:
    """验收未通过 cases and whether their re-inspection is booked; ?reinspection=
    booked|none narrows."""
    event = _event(request, pk)
    params = bounds.params(request)
    booked = params.choice("reinspection", reports.REINSPECTION_FILTERS, default="")
    found = reports.not_accepted(event, reinspection=booked)
    return _case_list(
        request,
        event,
        found,
        export=(
            report_exports.not_accepted_rows,
            "not-accepted",
            _("验收未通过一览表"),
        ),
        template="not_accepted_list",
        reinspection=booked,
    )


@require_http_methods(["GET"])
@access.role_required(*reports.FORM_ROLES)
def acceptance_form_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """验房交接单 of one case, as a download; audited as a read of the owner's data."""
    case = access.get_object_for(
        reports.cases_for_form(request.user).select_related(
            "event",
            "event_unit__unit__building",
            "customer",
            "proxy_authorisation__proxy",
            "outcome_by",
        ),
        pk,
    )
    data = acceptance_pdf.render(acceptance_pdf.form_for(case, user=request.user))
    audit.record(
        request,
        audit.CUSTOMER_VIEWED,
        obj=case,
        row_count=1,
        detail=f"验房交接单 PDF, event {case.event_id}",
    )
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = content_disposition_header(
        True, f"验房交接单-{case.event_unit.unit.code}-{case.round}.pdf"
    )
    return response
