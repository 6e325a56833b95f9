"""Deal pages: list, board, detail, create/edit, stage moves, lost/reopen, payments."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm.accounts import access as platform_access
from crm.core import bounds
from crm.core.once import submit_once
from crm.core.pagination import paginate
from culture.deals import access, forms, selectors, services
from customers import exports, imports, search
from customers.io_forms import ImportUploadForm
from customers.models import Customer, ImportJob

PER_PAGE = 25


def _add_errors(form: Any, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


@login_required
@require_http_methods(["GET"])
def deal_list(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "deals.view_deal")
    form = forms.DealFilterForm(request.GET or None, user=request.user)
    filters = form.cleaned_data if form.is_valid() else {}
    sort = filters.get("sort") or "recent"
    deals = selectors.deal_list(user=request.user, filters=filters, sort=sort)
    page = paginate(deals, str(bounds.params(request).page()), PER_PAGE)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "can_add": request.user.has_perm("deals.add_deal"),
        "can_import": request.user.has_perm("deals.import_deal"),
    }
    template = "deals/_deal_results.html" if request.htmx else "deals/deal_list.html"
    return render(request, template, context)


@login_required
@require_http_methods(["GET"])
def pipeline(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "deals.view_deal")
    form = forms.BoardFilterForm(request.GET or None, user=request.user)
    filters = form.cleaned_data if form.is_valid() else {}
    columns = selectors.board(user=request.user, filters=filters)
    context = {
        "form": form,
        "columns": columns,
        "filter_query": _board_query(filters),
        "can_move": request.user.has_perm("deals.change_deal"),
        "board_cards": selectors.BOARD_CARDS,
    }
    template = "deals/_board.html" if request.htmx else "deals/pipeline.html"
    return render(request, template, context)


def _board_query(filters: dict[str, Any]) -> str:
    parts = [f"{k}={filters[k].pk}" for k in ("owner", "team") if filters.get(k)]
    return "&".join(parts)


@login_required
@require_http_methods(["GET"])
def deal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    deal = access.get_deal_for(request.user, pk)
    context = selectors.deal_page(deal=deal)
    context.update(
        payment_form=forms.PaymentForm(),
        can_edit=request.user.has_perm("deals.change_deal"),
        can_pay=request.user.has_perm("deals.add_payment"),
        can_remove_payment=request.user.has_perm("deals.delete_payment"),
    )
    return render(request, "deals/deal_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def deal_create(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "deals.add_deal")
    visible = Customer.objects.visible_to(request.user).filter(merged_into__isnull=True)
    initial: dict[str, Any] = {"owner": request.user.pk}
    customer_id = bounds.params(request).id("customer")
    if customer_id:
        initial["customer"] = platform_access.get_object_for(visible, customer_id).pk
    form = forms.DealForm(
        request.POST or None, initial=initial, user=request.user, customers=visible
    )
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        customer, stage, owner = (
            data.pop("customer"),
            data.pop("stage"),
            data.pop("owner"),
        )
        data.pop("version", None)
        try:
            deal = services.deal_create(
                by=request.user, customer=customer, data=data, stage=stage, owner=owner
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(
                request, _("已创建商机“%(title)s”。") % {"title": deal.title}
            )
            return redirect(deal)
    return render(request, "deals/deal_form.html", {"form": form, "deal": None})


@login_required
@require_http_methods(["GET", "POST"])
def deal_edit(request: HttpRequest, pk: int) -> HttpResponse:
    deal = access.get_deal_for(request.user, pk, write=True)
    initial = {
        "title": deal.title,
        "product": deal.product,
        "amount": deal.amount,
        "channel": deal.channel_id,
        "owner": deal.owner_id,
        "expected_close_on": deal.expected_close_on,
        "version": deal.version,
    }
    form = forms.DealForm(
        request.POST or None, initial=initial, user=request.user, deal=deal
    )
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        version = data.pop("version")
        if version is None:
            version = deal.version
        try:
            services.deal_update(by=request.user, deal=deal, version=version, data=data)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("已保存。"))
            return redirect(deal)
    return render(request, "deals/deal_form.html", {"form": form, "deal": deal})


@login_required
@require_http_methods(["POST"])
def deal_move(request: HttpRequest, pk: int) -> HttpResponse:
    """A stage move from the board (drag or ←/→ buttons, htmx: the two columns it
    touched come back) or from the detail page (redirect)."""
    deal = access.get_deal_for(request.user, pk, write=True)
    form = forms.MoveForm(request.POST)
    from_stage = deal.stage_id
    error = ""
    if form.is_valid():
        try:
            services.deal_move(
                by=request.user,
                deal=deal,
                stage=form.cleaned_data["stage"],
                version=form.cleaned_data["version"],
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
    else:
        error = _("请选择有效的阶段。")
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect(deal)
    board_form = forms.BoardFilterForm(request.POST, user=request.user)
    filters = board_form.cleaned_data if board_form.is_valid() else {}
    to_stage = form.cleaned_data["stage"].pk if form.is_valid() else from_stage
    columns = selectors.board(
        user=request.user, filters=filters, only=[from_stage, to_stage]
    )
    response = render(
        request,
        "deals/_board_columns.html",
        {
            "columns": columns,
            "oob": True,
            "can_move": True,
            "filter_query": _board_query(filters),
            "error": error,
            "board_cards": selectors.BOARD_CARDS,
        },
    )
    return response


@login_required
@require_http_methods(["POST"])
def deal_lose(request: HttpRequest, pk: int) -> HttpResponse:
    deal = access.get_deal_for(request.user, pk, write=True)
    form = forms.LoseForm(request.POST)
    if form.is_valid():
        try:
            services.deal_lose(
                by=request.user,
                deal=deal,
                version=form.cleaned_data["version"],
                reason=form.cleaned_data["lost_reason"],
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("已标记为输单。"))
    else:
        messages.error(request, _("请填写输单原因。"))
    return redirect(deal)


@login_required
@require_http_methods(["POST"])
def deal_reopen(request: HttpRequest, pk: int) -> HttpResponse:
    deal = access.get_deal_for(request.user, pk, write=True)
    version = bounds.Params(request.POST).integer(
        "version", min_value=0, max_value=bounds.INT_MAX, default=deal.version
    )
    try:
        services.deal_reopen(by=request.user, deal=deal, version=version)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("商机已重新打开。"))
    return redirect(deal)


@login_required
@require_http_methods(["POST"])
def payment_add(request: HttpRequest, pk: int) -> HttpResponse:
    deal = access.get_deal_for(request.user, pk)
    access.require(request.user, "deals.add_payment")
    form = forms.PaymentForm(request.POST)
    if form.is_valid():
        try:
            services.payment_add(by=request.user, deal=deal, **form.cleaned_data)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("已登记回款。"))
            return redirect(deal)
    context = selectors.deal_page(deal=deal)
    context.update(
        payment_form=form,
        can_edit=request.user.has_perm("deals.change_deal"),
        can_pay=True,
        can_remove_payment=request.user.has_perm("deals.delete_payment"),
    )
    return render(request, "deals/deal_detail.html", context, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def payment_remove(request: HttpRequest, pk: int, payment_pk: int) -> HttpResponse:
    """A confirmation page, then the removal (the totals shrink with it)."""
    deal = access.get_deal_for(request.user, pk)
    payment = access.get_payment_for(request.user, payment_pk, deal=deal)
    if request.method == "POST":
        try:
            services.payment_remove(by=request.user, payment=payment)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("已删除该笔回款。"))
        return redirect(deal)
    return render(
        request, "deals/payment_remove.html", {"deal": deal, "payment": payment}
    )


@login_required
@require_http_methods(["POST"])
def customer_options(request: HttpRequest) -> HttpResponse:
    """The <option>s of the customer or channel picker for a search (htmx). A POST:
    the search may be a phone number, which stays out of addresses and logs."""
    access.require(request.user, "deals.add_deal")
    params = bounds.Params(request.POST)
    query = (
        params.search("q") or params.search("customer_q") or params.search("channel_q")
    )
    is_channel = params.flag("channel")
    rows: list[Customer] = []
    condition = search.condition(query) if query else None
    if condition is not None:
        customers = (
            selectors.channel_choices(user=request.user)
            if is_channel
            else Customer.objects.visible_to(request.user).filter(
                merged_into__isnull=True
            )
        )
        rows = list(
            search.annotate_for(customers, query).filter(condition).order_by("-id")[:20]
        )
    return render(
        request,
        "deals/_customer_options.html",
        {"rows": rows, "query": query, "is_channel": is_channel},
    )


def detail_url(deal_id: int) -> str:
    return reverse("deals:deal_detail", args=[deal_id])


# --- import of historical deals (customers/imports.py machinery) -----------------------


@login_required
@require_http_methods(["GET", "POST"])
@submit_once
def import_upload(request: HttpRequest) -> HttpResponse:
    from culture.deals import imports as deal_imports

    access.require(request.user, "deals.import_deal")
    form = ImportUploadForm(
        request.POST or None, request.FILES or None, kind=deal_imports.KIND
    )
    if request.method == "POST" and form.is_valid():
        job = imports.import_job_create(
            by=request.user,
            upload=form.cleaned_data["file"],
            inspection=form.inspection,
            kind=deal_imports.KIND,
        )
        return redirect(job)
    context = {
        "form": form,
        "columns": deal_imports.TEMPLATE_HEADERS,
        "max_rows": imports.max_rows(),
        "max_mb": imports.max_upload_bytes() // (1024 * 1024),
        "recent_jobs": ImportJob.objects.filter(
            created_by=request.user, kind=deal_imports.KIND
        ).order_by("-created_at")[:10],
    }
    return render(request, "deals/import_upload.html", context)


@login_required
@require_http_methods(["GET"])
def import_template(request: HttpRequest) -> HttpResponse:
    from culture.deals import imports as deal_imports

    access.require(request.user, "deals.import_deal")
    rows = [
        [header for header, _hint in deal_imports.TEMPLATE_HEADERS],
        deal_imports.TEMPLATE_EXAMPLE,
    ]
    response = StreamingHttpResponse(
        exports.csv_chunks(rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = content_disposition_header(
        True, _("商机导入模板.csv")
    )
    return response
