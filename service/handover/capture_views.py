"""The station captures' panels and endpoints, and the case's outcome panel, its
endpoints and its page (issue 17 parts 2–3).

The panels are included in the station page (`handover/onsite/stations/_<code>.html`)
and the case page (`handover/onsite/_outcomes.html`) through the template tags of
`handover_onsite`, and all of them on this module's own page
(`/handover/cases/<pk>/outcome/`). A capture posted by htmx answers its panel (with
the form's errors, 200, so htmx swaps it); a plain post redirects to `next` (the page
it came from) or answers this module's page with the errors (400).

Who: every staff role (the front desk is whoever is on duty), on the cases of the
events the user sees (selectors.events_for); another event's case is a 404.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.contrib import messages
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from crm.accounts import access
from crm.accounts.roles import Role
from service.handover import (
    acceptance_pdf,
    captures,
    outcomes,
    reinspection,
    reports,
    selectors,
)
from service.handover.capture_forms import (
    AcceptForm,
    FeeForm,
    FeeVoidForm,
    KeysForm,
    MetersForm,
    NoShowNextForm,
    NotAcceptedForm,
    RefusalForm,
    ReinspectionForm,
    SettlementForm,
    SignatureForm,
    SurveyForm,
    refusal_initial,
)
from service.handover.models import (
    FeePayment,
    MeterReading,
    RefusalEvidence,
    RefusalRecord,
    StationDefinition,
    UnitHandover,
)

ONSITE_ROLES = tuple(Role.values)
Code = StationDefinition.Code
# The stations that record something on the case, in the route sheet's order.
CAPTURE_CODES = (
    Code.SETTLEMENT,
    Code.FEES,
    Code.METERS,
    Code.KEYS,
    Code.ACCEPTANCE,
    Code.SURVEY,
)


def cases_for(user: Any) -> QuerySet:
    return UnitHandover.objects.filter(event__in=selectors.events_for(user))


def _visible_case(request: HttpRequest, pk: Any) -> UnitHandover:
    return access.get_object_for(
        cases_for(request.user).select_related(
            "event",
            "event_unit__unit__building",
            "customer",
            "reinspection_appointment__slot__event",
        ),
        pk,
    )


def _is_htmx(request: HttpRequest) -> bool:
    return bool(request.headers.get("HX-Request"))


def _next_url(request: HttpRequest, case: UnitHandover) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("handover:case_outcome", args=[case.pk])


def _here(request: HttpRequest) -> str:
    """Where a plain post of a panel's form returns: the page that showed it (a
    panel re-shown by a post keeps the `next` it was posted with)."""
    if request.method == "POST":
        target = request.POST.get("next", "")
        if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}
        ):
            return target
    elif _is_htmx(request):  # a panel refreshed in place: the page it sits on
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
        if current.netloc == request.get_host() and current.path.startswith("/"):
            return current.path + (f"?{current.query}" if current.query else "")
    return request.get_full_path()


# --- panels --------------------------------------------------------------------------------


def panel_context(
    request: HttpRequest,
    case: UnitHandover,
    code: str,
    form: Any = None,
    *,
    next_url: str = "",
) -> dict[str, Any]:
    """What the `code` station's panel shows: its form (bound when re-shown with
    errors) and what is recorded so far."""
    context: dict[str, Any] = {
        "case": case,
        "code": code,
        "editable": case.is_open,
        "next_url": next_url or _here(request),
    }
    if code == Code.SETTLEMENT:
        unit = case.event_unit.unit
        context["unit"] = unit
        context["form"] = form or SettlementForm(
            initial={"amount": case.area_difference_amount}
        )
        context["suggestion"] = getattr(form, "suggestion", None)
    elif code == Code.FEES:
        lines, total = captures.fee_lines(case)
        # A void re-shown with its error keeps the add form empty beside it.
        void_form = form if isinstance(form, FeeVoidForm) else None
        context.update(
            lines=lines,
            total=total,
            void_form=void_form,
            form=FeeForm() if void_form is not None or form is None else form,
        )
    elif code == Code.METERS:
        readings = {r.kind: r for r in case.meter_readings.all()}
        initial = {}
        for kind, reading in readings.items():
            initial[f"number_{kind}"] = reading.meter_number
            initial[f"reading_{kind}"] = reading.reading
        form = form or MetersForm(initial=initial)
        context.update(
            form=form,
            rows=[
                (
                    label,
                    form[f"number_{kind}"],
                    form[f"reading_{kind}"],
                    readings.get(kind),
                )
                for kind, label in MeterReading.Kind.choices
            ],
        )
    elif code == Code.KEYS:
        initial = {"action": case.key_action}
        for item, count in (case.key_items or {}).items():
            initial[f"item_{item}"] = count
        form = form or KeysForm(initial=initial)
        context.update(
            form=form,
            item_fields=[form[f"item_{item}"] for item in captures.KEY_ITEMS],
            recorded=[
                (label, (case.key_items or {}).get(item))
                for item, label in captures.KEY_ITEMS.items()
                if (case.key_items or {}).get(item)
            ],
        )
    elif code == Code.ACCEPTANCE:
        context["form"] = form or SignatureForm()
    elif code == Code.SURVEY:
        context["editable"] = case.is_open or case.state in outcomes.ACCEPTED_STATES
        context["form"] = form or SurveyForm(
            initial={"rating": case.rating, "comment": case.rating_comment}
        )
    if context.get("form") is not None:
        # Several panels on one page: ids unique per panel and case (labels find
        # their own inputs).
        context["form"].auto_id = f"{code}-{case.pk}-%s"
    return context


def render_panel(
    request: HttpRequest, case: UnitHandover, code: str, form: Any = None
) -> str:
    return render_to_string(
        f"handover/onsite/captures/{code}.html",
        panel_context(request, case, code, form),
        request=request,
    )


def outcome_context(
    request: HttpRequest, case: UnitHandover, forms: dict[str, Any] | None = None
) -> dict[str, Any]:
    forms = forms or {}
    context: dict[str, Any] = {
        "case": case,
        "next_url": _here(request),
        "is_open": case.is_open,
    }
    if case.is_open:
        context.update(
            blockers=outcomes.acceptance_blockers(case),
            open_defects=outcomes.open_defects(case),
            accept_form=forms.get("accept")
            or AcceptForm(initial={"version": case.version}),
            not_accepted_form=forms.get("not_accepted")
            or NotAcceptedForm(initial={"version": case.version}),
            refusal_form=forms.get("refuse")
            or RefusalForm(initial=refusal_initial(case)),
        )
    elif case.state == UnitHandover.State.ABSENT:
        context["no_show_form"] = forms.get("no_show") or NoShowNextForm(
            initial={"version": case.version, "next_step": case.no_show_next}
        )
    elif case.state == UnitHandover.State.NOT_ACCEPTED:
        context.update(reinspection_context(case, forms.get("reinspection")))
    for key in (
        "accept_form",
        "not_accepted_form",
        "refusal_form",
        "no_show_form",
        "reinspection_form",
    ):
        if key in context:
            context[key].auto_id = f"{key}-{case.pk}-%s"
    if not case.is_open and case.state != UnitHandover.State.ABSENT:
        # 验房交接单: for those who may print it (reports.cases_for_form), one query.
        context["form_pdf"] = (
            reports.may_print_form(request.user)
            and reports.cases_for_form(request.user).filter(pk=case.pk).exists()
        )
    if case.state == UnitHandover.State.REFUSED:
        context["refusal"] = (
            RefusalRecord.objects.filter(case=case).prefetch_related("evidence").first()
        )
    return context


def _slot_label(case: UnitHandover, choice: reinspection.SlotChoice) -> str:
    slot = choice.slot
    label = f"{slot.date:%Y-%m-%d} {slot.start_time:%H:%M}–{slot.end_time:%H:%M}"
    if slot.event_id != case.event_id:
        label = f"{slot.event.name} · {label}"
    if choice.seats <= 0:
        return _("%(slot)s（已满）") % {"slot": label}
    return _("%(slot)s（剩余 %(n)s 户）") % {"slot": label, "n": choice.seats}


def reinspection_context(case: UnitHandover, form: Any = None) -> dict[str, Any]:
    """验收未通过: the re-inspection booked (its appointment), or the form to book it
    with the slots offered."""
    if not reinspection.needs_booking(case):
        return {"reinspection": case.reinspection_appointment}
    choices = [
        (choice.slot.pk, _slot_label(case, choice))
        for choice in reinspection.slot_choices(case)
    ]
    if form is None:
        form = ReinspectionForm(choices=choices)
    else:
        form.fields["slot"].widget.choices = [("", _("请选择时段")), *choices]
    return {
        "reinspection": case.reinspection_appointment,
        "reinspection_form": form,
        "reinspection_slots": len(choices),
    }


def _page(
    request: HttpRequest,
    case: UnitHandover,
    *,
    forms: dict[str, Any] | None = None,
    capture: tuple[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    codes = set(
        StationDefinition.objects.filter(event_id=case.event_id).values_list(
            "code", flat=True
        )
    )
    if capture:  # the panel posted is shown with its errors, station or not
        codes.add(capture[0])
    shown = [c for c in CAPTURE_CODES if c in codes] or list(CAPTURE_CODES)
    panels = [
        render_panel(
            request, case, code, capture[1] if capture and capture[0] == code else None
        )
        for code in shown
    ]
    context = {
        "case": case,
        "panels": panels,
        **outcome_context(request, case, forms),
    }
    return render(request, "handover/onsite/case_outcome.html", context, status=status)


@require_http_methods(["GET"])
@access.role_required(*ONSITE_ROLES)
def case_outcome(request: HttpRequest, pk: int) -> HttpResponse:
    return _page(request, _visible_case(request, pk))


@require_http_methods(["GET"])
@access.role_required(*ONSITE_ROLES)
def case_outcome_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The outcome panel alone, re-read after a capture (htmx, `case-changed`)."""
    case = _visible_case(request, pk)
    return render(
        request, "handover/onsite/_outcomes_panel.html", outcome_context(request, case)
    )


# --- capture endpoints ---------------------------------------------------------------------


def _captured(
    request: HttpRequest,
    case: UnitHandover,
    code: str,
    form: Any,
    save: Any,
) -> HttpResponse:
    """Validate, save, answer: the panel (htmx) or a redirect; errors as the panel
    (htmx, 200) or the page (400)."""
    if form.is_valid():
        try:
            result = save(form)
        except outcomes.OutcomeRefused as refused:
            form.add_error(None, refused.message)
        else:
            if result is not None:  # a re-shown form (the suggestion)
                form = result
            else:
                case.refresh_from_db()
                if not _is_htmx(request):
                    messages.success(request, _("已保存。"))
                    return redirect(_next_url(request, case))
                form = None
    if _is_htmx(request):
        response = HttpResponse(render_panel(request, case, code, form))
        if form is None:  # saved: the outcome panel reloads itself (its rules, version)
            response["HX-Trigger"] = "case-changed"
        return response
    if form is not None and form.errors:
        return _page(request, case, capture=(code, form), status=400)
    return _page(request, case, capture=(code, form))


@require_POST
@access.role_required(*ONSITE_ROLES)
def capture_settlement(request: HttpRequest, pk: int) -> HttpResponse:
    case = _visible_case(request, pk)
    form = SettlementForm(request.POST)

    def save(form: SettlementForm) -> Any:
        data = form.cleaned_data
        if request.POST.get("compute"):
            suggestion = captures.area_difference_suggestion(case, data["price_per_m2"])
            if suggestion is None:
                raise outcomes.OutcomeRefused(
                    _("缺少合同面积、实测面积或单价，无法计算。")
                )
            shown = SettlementForm(
                initial={"price_per_m2": data["price_per_m2"], "amount": suggestion}
            )
            shown.suggestion = suggestion
            return shown
        if data["amount"] is None:
            raise outcomes.OutcomeRefused(_("请填写面积补差金额。"))
        captures.settlement_save(case, by=request.user, amount=data["amount"])
        return None

    return _captured(request, case, Code.SETTLEMENT, form, save)


@require_POST
@access.role_required(*ONSITE_ROLES)
def capture_fee_add(request: HttpRequest, pk: int) -> HttpResponse:
    case = _visible_case(request, pk)

    def save(form: FeeForm) -> None:
        captures.fee_add(case, by=request.user, **form.cleaned_data)

    return _captured(request, case, Code.FEES, FeeForm(request.POST), save)


@require_POST
@access.role_required(*ONSITE_ROLES)
def capture_fee_void(request: HttpRequest, pk: int) -> HttpResponse:
    """作废 one fee line (with the reason) of a case the user sees; answers the fees
    panel like the other captures."""
    line = access.get_object_for(
        FeePayment.objects.filter(case__in=cases_for(request.user)), pk
    )
    case = _visible_case(request, line.case_id)

    def save(form: FeeVoidForm) -> None:
        captures.fee_void(line, by=request.user, reason=form.cleaned_data["reason"])

    return _captured(request, case, Code.FEES, FeeVoidForm(request.POST), save)


@require_POST
@access.role_required(*ONSITE_ROLES)
def capture_meters(request: HttpRequest, pk: int) -> HttpResponse:
    case = _visible_case(request, pk)

    def save(form: MetersForm) -> None:
        captures.meter_readings_save(case, by=request.user, readings=form.readings())

    return _captured(request, case, Code.METERS, MetersForm(request.POST), save)


@require_POST
@access.role_required(*ONSITE_ROLES)
def capture_keys(request: HttpRequest, pk: int) -> HttpResponse:
    case = _visible_case(request, pk)

    def save(form: KeysForm) -> None:
        captures.keys_save(
            case,
            by=request.user,
            action=form.cleaned_data["action"],
            items=form.items(),
        )

    return _captured(request, case, Code.KEYS, KeysForm(request.POST), save)


@require_POST
@access.role_required(*ONSITE_ROLES)
def capture_signature(request: HttpRequest, pk: int) -> HttpResponse:
    case = _visible_case(request, pk)

    def save(form: SignatureForm) -> None:
        captures.signature_save(
            case, by=request.user, data_url=form.cleaned_data["signature"]
        )

    return _captured(request, case, Code.ACCEPTANCE, SignatureForm(request.POST), save)


@require_POST
@access.role_required(*ONSITE_ROLES)
def capture_survey(request: HttpRequest, pk: int) -> HttpResponse:
    case = _visible_case(request, pk)

    def save(form: SurveyForm) -> None:
        captures.rating_save(
            case,
            by=request.user,
            rating=form.cleaned_data["rating"],
            comment=form.cleaned_data["comment"],
        )

    return _captured(request, case, Code.SURVEY, SurveyForm(request.POST), save)


# --- outcome endpoints ---------------------------------------------------------------------


def _decided(
    request: HttpRequest, case: UnitHandover, key: str, form: Any, decide: Any
) -> HttpResponse:
    if form.is_valid():
        try:
            decide(form.cleaned_data)
        except outcomes.OutcomeRefused as refused:
            form.add_error(None, refused.message)
        else:
            case.refresh_from_db()
            messages.success(
                request,
                _("交房单已登记为“%(state)s”。") % {"state": case.get_state_display()},
            )
            return redirect(_next_url(request, case))
    return _page(request, case, forms={key: form}, status=400)


@require_POST
@access.role_required(*ONSITE_ROLES)
def case_accept(request: HttpRequest, pk: int) -> HttpResponse:
    case = _visible_case(request, pk)

    def decide(data: dict[str, Any]) -> None:
        outcomes.case_accept(
            case,
            by=request.user,
            version=data["version"],
            with_defects=data["with_defects"],
        )

    return _decided(request, case, "accept", AcceptForm(request.POST), decide)


@require_POST
@access.role_required(*ONSITE_ROLES)
def case_not_accepted(request: HttpRequest, pk: int) -> HttpResponse:
    case = _visible_case(request, pk)

    def decide(data: dict[str, Any]) -> None:
        outcomes.case_not_accepted(
            case,
            by=request.user,
            version=data["version"],
            reason=data["reason"],
            reinspection_on=data["reinspection_on"],
        )

    return _decided(
        request, case, "not_accepted", NotAcceptedForm(request.POST), decide
    )


@require_POST
@access.role_required(*reinspection.BOOKING_ROLES)
def case_reinspection_book(request: HttpRequest, pk: int) -> HttpResponse:
    """预约复验 of a 验收未通过 case (reinspection.reinspection_book)."""
    case = _visible_case(request, pk)
    form = ReinspectionForm(request.POST)
    if form.is_valid():
        try:
            appointment = reinspection.reinspection_book(
                case,
                by=request.user,
                slot_id=form.cleaned_data["slot"],
                override_reason=form.cleaned_data["override_reason"],
            )
        except reinspection.ReinspectionRefused as refused:
            form.add_error(None, refused.message)
            case.refresh_from_db()
            if not reinspection.needs_booking(case):
                # No booking form on the page (not 验收未通过, or booked meanwhile):
                # the reason is shown as the page's message.
                messages.error(request, refused.message)
        else:
            messages.success(
                request,
                _("已预约复验：%(slot)s。") % {"slot": appointment.slot},
            )
            return redirect(_next_url(request, case))
    return _page(request, case, forms={"reinspection": form}, status=400)


@require_POST
@access.role_required(*ONSITE_ROLES)
def case_refuse(request: HttpRequest, pk: int) -> HttpResponse:
    case = _visible_case(request, pk)
    form = RefusalForm(request.POST, files=request.FILES)

    def decide(data: dict[str, Any]) -> None:
        outcomes.case_refuse(
            case,
            by=request.user,
            version=data["version"],
            reason=data["reason"],
            details=data["details"],
            owner_statement=data["owner_statement"],
            notice_deadline=data["notice_deadline"],
            evidence=form.uploads,
        )

    return _decided(request, case, "refuse", form, decide)


@require_POST
@access.role_required(*ONSITE_ROLES)
def case_no_show_next(request: HttpRequest, pk: int) -> HttpResponse:
    case = _visible_case(request, pk)

    def decide(data: dict[str, Any]) -> None:
        outcomes.no_show_next(
            case, by=request.user, version=data["version"], next_step=data["next_step"]
        )

    return _decided(request, case, "no_show", NoShowNextForm(request.POST), decide)


# --- refusal evidence ----------------------------------------------------------------------


@require_http_methods(["GET"])
@access.role_required(*ONSITE_ROLES)
def refusal_evidence(request: HttpRequest, pk: int) -> FileResponse:
    """One evidence file of a refusal, as a download (never rendered by the browser),
    for whoever may see the case."""
    evidence = access.get_object_for(
        RefusalEvidence.objects.filter(refusal__case__in=cases_for(request.user)), pk
    )
    try:
        handle = evidence.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=evidence.file.name.rsplit("/", 1)[-1],
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response


# --- the acceptance signature ------------------------------------------------------------


@require_http_methods(["GET"])
@access.role_required(*ONSITE_ROLES)
def case_signature(request: HttpRequest, pk: int) -> HttpResponse:
    """The owner's acceptance signature of a case the user sees (the case page shows
    it), read from the case's own file field: no path comes from the request, and
    only a PNG or JPEG (by its content) is served, never from a public media URL."""
    case = access.get_object_for(cases_for(request.user).only("pk", "signature"), pk)
    image = acceptance_pdf.signature_image(case)
    if image is None:
        raise Http404
    data, content_type = image
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = f'inline; filename="signature-{case.pk}.png"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
