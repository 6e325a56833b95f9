from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from crm.core import bounds, form_renderer, network
from crm.core.once import submit_once
from crm.core.pagination import paginate
from customers import masking, search
from customers import selectors as customer_selectors
from customers.models import Customer, CustomerProfile
from service import panels, selectors, services
from service.forms import (
    AssetForm,
    AssignForm,
    AttachmentForm,
    CallerForm,
    DealerReportForm,
    FollowMessageForm,
    IntakeForm,
    QueueFilterForm,
    RatingForm,
    ReferenceForm,
    ReplyForm,
    TicketForm,
    TransitionForm,
    WorkOrderForm,
    WorkOrderUpdateForm,
)
from service.models import (
    Asset,
    CannedReply,
    Ticket,
    TicketAttachment,
    TicketMessage,
    WorkOrder,
)
from service.sla import BusinessCalendar

ALL_ROLES = tuple(Role.values)
ASSET_ROLES = (Role.SERVICE, Role.MANAGER, Role.ADMIN)
REPORT_ROLES = (Role.MANAGER, Role.ADMIN)
PAGE_SIZE = 25
REFERENCE_MAX = Ticket._meta.get_field("reference").max_length
INTAKE_SESSION_KEY = "service_intake_reference"
INTAKE_FOLLOW_KEY = "service_intake_follow"
# A follow token is ~70 characters; anything much longer is not one of ours.
FOLLOW_TOKEN_MAX = 300
CONFLICT_MESSAGE = gettext_lazy(
    "工单已被他人修改。下面显示的是最新状态，请核对后再操作。"
)


def _visible_ticket(request: HttpRequest, reference: str) -> Ticket:
    # A reference is short printable text; `%00` in the path would reach PostgreSQL,
    # which refuses NUL in text (a 500 before).
    if len(reference) > REFERENCE_MAX or not reference.isprintable():
        raise Http404
    try:
        return selectors.ticket_for_page(user=request.user).get(reference=reference)
    except Ticket.DoesNotExist as exc:
        raise Http404 from exc


def _visible_customer(request: HttpRequest, pk: Any) -> Customer:
    return access.get_object_for(
        Customer.objects.visible_to(request.user).filter(merged_into__isnull=True),
        pk,
    )


def _add_errors(form: Any, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


# --- queues ------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@access.role_required(*ALL_ROLES)
def ticket_queue(request: HttpRequest) -> HttpResponse:
    # The search posts: a phone number comes back as ?s=<token>, not in the address.
    if request.method == "POST":
        # An over-long search is a form error here, not a redirect Django refuses.
        params = request.POST
    else:
        params = search.resolved(request.session, request.GET)
        if params is None:
            return search.redirect_without_pii(request, request.path, request.GET)
    default = "mine" if request.user.role == Role.SERVICE else "all"
    queue = bounds.Params(params).choice("queue", selectors.QUEUES, default=default)
    form = QueueFilterForm(
        params, categories=selectors.category_choices(), renderer=form_renderer.FAST
    )
    valid = form.is_valid()
    if request.method == "POST" and valid:
        return search.redirect_without_pii(request, request.path, request.POST)
    now, calendar = timezone.now(), BusinessCalendar.load()
    tickets = selectors.ticket_queue(
        user=request.user,
        queue=queue,
        calendar=calendar,
        now=now,
        query=form.cleaned_data.get("q", "") if valid else "",
        filters=form.filters(),
    )
    page = paginate(tickets, bounds.params(request).page(), PAGE_SIZE)
    page.object_list = selectors.attach_clocks(list(page.object_list), calendar, now)
    context = {
        "page": page,
        "form": form,
        "queue": queue,
        "queues": QUEUE_TABS,
        "can_add": request.user.has_perm("service.add_ticket"),
        "can_report": request.user.role in REPORT_ROLES,
    }
    template = (
        "service/_ticket_results.html" if request.htmx else "service/ticket_queue.html"
    )
    return render(request, template, context)


QUEUE_TABS = [
    ("mine", gettext_lazy("我的队列")),
    ("team", gettext_lazy("团队队列")),
    ("unassigned", gettext_lazy("未分派")),
    ("breaching", gettext_lazy("即将超时")),
    ("all", gettext_lazy("全部")),
]


# --- a new ticket ------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@access.role_required(*ALL_ROLES)
@submit_once
def ticket_create(request: HttpRequest) -> HttpResponse:
    """Look up the caller, then fill in the ticket beside their one-to-one profile."""
    access.require_perm(request.user, "service.add_ticket")
    if "new" in (
        bounds.Params(request.POST).choice("caller", ("new",)),
        bounds.params(request).choice("caller", ("new",)),
    ):
        return _new_caller_ticket(request)
    customer_id = request.POST.get("customer") or bounds.params(request).id("customer")
    if not customer_id:
        return _customer_picker(request)
    customer = _visible_customer(request, customer_id)
    form = TicketForm(
        request.POST or None,
        request.FILES or None,
        assets=customer.assets.select_related("dealer").order_by("name"),
        categories=selectors.category_choices(),
        # services.attachment_add needs change_ticket; sales may open tickets only.
        can_attach=request.user.has_perm("service.change_ticket"),
    )
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        uploads = data.pop("attachments", [])
        try:
            # The ticket and its files are saved together, or not at all.
            with transaction.atomic():
                ticket = services.ticket_create(
                    by=request.user, customer=customer, **data
                )
                for upload in uploads:
                    services.attachment_add(
                        by=request.user, ticket=ticket, upload=upload
                    )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(
                request,
                _("工单 %(ref)s 已创建。") % {"ref": ticket.reference},
            )
            return redirect(ticket)
    context = {
        "customer": customer,
        "form": form,
        "profile": CustomerProfile.objects.filter(customer=customer).first(),
        "open_tickets": list(
            Ticket.objects.visible_to(request.user)
            .open()
            .filter(customer=customer)
            .order_by("-created_at")[:5]
        ),
        "can_see_pii": masking.can_see_pii(request.user),
        "can_edit": False,
    }
    return render(
        request,
        "service/ticket_form.html",
        context,
        status=400 if form.is_bound and form.errors else 200,
    )


def _new_caller_ticket(request: HttpRequest) -> HttpResponse:
    """An unknown caller: the agent registers them (an unverified contact, the only
    customer the desk may create) and fills in the ticket, in one submit."""
    access.require_perm(request.user, "customers.register_caller")
    if request.method == "POST":
        caller = CallerForm(request.POST, prefix="caller")
    else:
        params = search.resolved(request.session, request.GET)
        if params is None:
            return search.redirect_without_pii(request, request.path, request.GET)
        caller = CallerForm(
            initial=_caller_initial(bounds.Params(params).search()), prefix="caller"
        )
    form = TicketForm(
        request.POST or None,
        request.FILES or None,
        assets=Asset.objects.none(),
        categories=selectors.category_choices(),
        can_attach=request.user.has_perm("service.change_ticket"),
        new_caller=True,
    )
    if request.method == "POST" and all([caller.is_valid(), form.is_valid()]):
        data = dict(form.cleaned_data)
        uploads = data.pop("attachments", [])
        try:
            ticket = services.caller_ticket_create(
                by=request.user,
                name=caller.cleaned_data["name"],
                phone=caller.cleaned_data["phone"],
                asset=caller.asset(),
                ticket=data,
                uploads=uploads,
            )
        except ValidationError as error:
            _add_caller_errors(caller, form, error)
        else:
            messages.success(
                request,
                _("已登记来电客户“%(name)s”（待核实），工单 %(ref)s 已创建。")
                % {"name": ticket.customer.name, "ref": ticket.reference},
            )
            return redirect(ticket)
    bad = caller.is_bound and bool(caller.errors or form.errors)
    context = {"caller_form": caller, "form": form, "can_edit": False}
    return render(
        request, "service/ticket_form.html", context, status=400 if bad else 200
    )


def _caller_initial(query: str) -> dict[str, str]:
    """What the agent searched for: a number goes in the phone, a name in the name."""
    if sum(c.isdigit() for c in query) >= 7:
        return {"phone": query}
    return {"name": query} if query else {}


def _add_caller_errors(caller: Any, form: Any, error: ValidationError) -> None:
    """The caller's errors (name, phone) on the caller's fields, the rest on the
    ticket's."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.error_dict.items():
        if field in ("name", "phone"):
            caller.add_error(field, errors)
        else:
            form.add_error(field if field in form.fields else None, errors)


def _customer_picker(request: HttpRequest) -> HttpResponse:
    """Find the caller. The look-up posts: a caller's number comes back as
    ?s=<token>, never as digits in the address (customers/search.py)."""
    if request.method == "POST":
        return search.redirect_without_pii(request, request.path, request.POST)
    params = search.resolved(request.session, request.GET)
    if params is None:
        return search.redirect_without_pii(request, request.path, request.GET)
    query = bounds.Params(params).search()
    customers = (
        list(customer_selectors.customer_list(user=request.user, query=query)[:10])
        if query
        else []
    )
    context = {
        "query": query,
        "customers": customers,
        "can_see_pii": masking.can_see_pii(request.user),
        "new_caller_url": _new_caller_url(request, query),
    }
    template = (
        "service/_customer_picker.html"
        if request.htmx
        else "service/ticket_pick_customer.html"
    )
    return render(request, template, context)


def _new_caller_url(request: HttpRequest, query: str) -> str:
    """Where the agent registers an unknown caller, carrying what was searched (a
    number as its ?s= token, never as digits); "" for a role that may not."""
    if not query or not request.user.has_perm("customers.register_caller"):
        return ""
    data = QueryDict(mutable=True)
    data["q"] = query
    params = search.url_params(request.session, data)
    params["caller"] = "new"
    return f"{reverse('service:ticket_create')}?{params.urlencode()}"


# --- the ticket page and its actions -----------------------------------------------------


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def ticket_detail(request: HttpRequest, reference: str) -> HttpResponse:
    return _render_ticket(request, _visible_ticket(request, reference))


def _render_ticket(
    request: HttpRequest, ticket: Ticket, *, status: int = 200, **forms: Any
) -> HttpResponse:
    user = request.user
    now, calendar = timezone.now(), BusinessCalendar.load()
    context = selectors.ticket_page(
        user=user,
        ticket=ticket,
        calendar=calendar,
        now=now,
        whole_conversation=bounds.params(request).flag("conversation", "all"),
    )
    can_change = user.has_perm("service.change_ticket") and not ticket.merged_into_id
    initial = {"version": ticket.version}
    fast = form_renderer.FAST
    context.update(
        can_change=can_change,
        can_add_workorder=can_change and user.has_perm("service.add_workorder"),
        can_see_pii=masking.can_see_pii(user),
        can_edit=False,
        reply_form=forms.get("reply_form") or ReplyForm(initial=initial, renderer=fast),
        attachment_form=forms.get("attachment_form")
        or AttachmentForm(initial=initial, renderer=fast),
        transition_form=forms.get("transition_form")
        or TransitionForm(initial=initial, renderer=fast),
        reference_form=forms.get("reference_form")
        or ReferenceForm(initial=initial, renderer=fast),
        workorder_form=forms.get("workorder_form")
        or WorkOrderForm(
            initial=initial, departments=selectors.departments(), renderer=fast
        ),
        assignees=list(selectors.assignee_choices(ticket=ticket)) if can_change else [],
        canned_replies=list(selectors.canned_replies()) if can_change else [],
        reply_channels=_reply_channels(user, ticket) if can_change else [],
        ticket_panels=panels.rendered(user=user, ticket=ticket),
    )
    return render(request, "service/ticket_detail.html", context, status=status)


def _reply_channels(user: Any, ticket: Ticket) -> list[tuple[str, str, str]]:
    """(channel, its name, the address as this user may see it) for the reply box."""
    names = {"email": _("邮件"), "sms": _("短信")}
    shown = masking.can_see_pii(user)
    rows = []
    for channel, to in services.reply_channels(ticket).items():
        if not shown:
            name, _at, domain = to.partition("@")
            to = f"{name[:1]}***@{domain}" if domain else masking.mask_phone(to)
        rows.append((channel, names[channel], to))
    return rows


def _changing(
    request: HttpRequest, reference: str, perm: str = "service.change_ticket"
) -> Ticket:
    ticket = _visible_ticket(request, reference)
    access.require_perm(request.user, perm)
    if ticket.merged_into_id:
        # A merged ticket lives on in its target; only the target changes.
        raise PermissionDenied
    return ticket


def _conflict(
    request: HttpRequest, current: Ticket, name: str, form_class: type, **kwargs: Any
) -> HttpResponse:
    """Show the ticket as it is now, keeping what the user typed, with the new version
    so that a deliberate second submit goes through."""
    messages.error(request, CONFLICT_MESSAGE)
    current = _visible_ticket(request, current.reference)
    data: QueryDict = request.POST.copy()
    data["version"] = str(current.version)
    return _render_ticket(
        request, current, status=409, **{name: form_class(data, **kwargs)}
    )


def _is_stale(form: Any, ticket: Ticket) -> bool:
    return form.cleaned_data["version"] != ticket.version


@require_http_methods(["POST"])
@access.role_required(*ALL_ROLES)
@submit_once
def ticket_reply(request: HttpRequest, reference: str) -> HttpResponse:
    ticket = _changing(request, reference)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        return _render_ticket(request, ticket, status=400, reply_form=form)
    if _is_stale(form, ticket):
        return _conflict(request, ticket, "reply_form", ReplyForm)
    kind = form.cleaned_data["kind"]
    try:
        services.ticket_message_add(
            by=request.user,
            ticket=ticket,
            body=form.cleaned_data["body"],
            kind=kind,
            channel=form.cleaned_data["channel"] if kind == "reply" else "",
        )
    except ValidationError as error:
        _add_errors(form, error)
        return _render_ticket(request, ticket, status=400, reply_form=form)
    done = {
        "reply": _("回复已排队发送给客户，发送结果显示在消息上。"),
        "call": _("电话记录已保存。"),
    }
    messages.success(request, done.get(kind, _("备注已保存。")))
    return redirect(ticket.get_absolute_url() + "#conversation")


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def message_delivery(request: HttpRequest, pk: int) -> HttpResponse:
    """A reply's delivery state (htmx polls it while the reply is queued)."""
    message = access.get_object_for(
        TicketMessage.objects.select_related("delivery").filter(
            ticket__in=selectors.ticket_for_page(user=request.user),
            kind=TicketMessage.Kind.REPLY,
        ),
        pk,
    )
    return render(request, "service/_delivery.html", {"message": message})


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def canned_reply(request: HttpRequest, reference: str) -> HttpResponse:
    """The reply box filled with a canned reply (htmx), after what was already typed."""
    ticket = _changing(request, reference)
    params = bounds.params(request)
    body = params.text("body", max_length=5000)
    # A hand-made ?canned=abc is no reply, not a 500 (S6).
    canned_id = params.id("canned")
    canned = CannedReply.objects.filter(pk=canned_id).first() if canned_id else None
    if canned is not None:
        text = services.canned_reply_render(
            body=canned.body, ticket=ticket, agent=request.user
        )
        body = f"{body.rstrip()}\n{text}" if body.strip() else text
    return render(request, "service/_reply_body.html", {"body": body})


@require_http_methods(["POST"])
@access.role_required(*ALL_ROLES)
@submit_once
def attachment_upload(request: HttpRequest, reference: str) -> HttpResponse:
    ticket = _changing(request, reference)
    form = AttachmentForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render_ticket(request, ticket, status=400, attachment_form=form)
    if _is_stale(form, ticket):
        messages.error(request, CONFLICT_MESSAGE)
        return _render_ticket(request, _visible_ticket(request, reference), status=409)
    try:
        with transaction.atomic():
            for upload in form.cleaned_data["files"]:
                services.attachment_add(by=request.user, ticket=ticket, upload=upload)
    except ValidationError as error:
        _add_errors(form, error)
        return _render_ticket(request, ticket, status=400, attachment_form=form)
    messages.success(request, _("附件已上传。"))
    return redirect(ticket.get_absolute_url() + "#attachments")


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def attachment_download(request: HttpRequest, pk: int) -> FileResponse:
    attachment = access.get_object_for(
        TicketAttachment.objects.filter(
            ticket__in=Ticket.objects.visible_to(request.user)
        ),
        pk,
    )
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=attachment.original_name,
        content_type=attachment.content_type,
    )
    # Never rendered by the browser: an uploaded file cannot run as a page of ours.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response


@require_http_methods(["POST"])
@access.role_required(*ALL_ROLES)
def ticket_assign(request: HttpRequest, reference: str) -> HttpResponse:
    ticket = _changing(request, reference)
    form = AssignForm(request.POST, people=_assignable(request, ticket))
    if not form.is_valid():
        messages.error(request, _("请选择处理人。"))
        return redirect(ticket)
    try:
        services.ticket_assign(
            by=request.user,
            ticket=ticket,
            assignee=form.cleaned_data["assignee"],
            version=form.cleaned_data["version"],
        )
    except services.EditConflict as conflict:
        return _stale_page(request, conflict.current)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(ticket)
    messages.success(
        request, _("已分派给 %(name)s。") % {"name": form.cleaned_data["assignee"]}
    )
    return redirect(ticket)


def _assignable(request: HttpRequest, ticket: Ticket) -> Any:
    """The desk's agents for this ticket, and the user themself ("assign to me")."""
    agents = selectors.assignee_choices(ticket=ticket).values("pk")
    return get_user_model().objects.filter(Q(pk__in=agents) | Q(pk=request.user.pk))


def _stale_page(request: HttpRequest, current: Ticket) -> HttpResponse:
    messages.error(request, CONFLICT_MESSAGE)
    return _render_ticket(
        request, _visible_ticket(request, current.reference), status=409
    )


@require_http_methods(["POST"])
@access.role_required(*ALL_ROLES)
def ticket_transition(request: HttpRequest, reference: str) -> HttpResponse:
    ticket = _changing(request, reference)
    form = TransitionForm(request.POST)
    if not form.is_valid():
        return _render_ticket(request, ticket, status=400, transition_form=form)
    if _is_stale(form, ticket):
        return _conflict(request, ticket, "transition_form", TransitionForm)
    to_status = form.cleaned_data["to_status"]
    try:
        services.ticket_transition(
            by=request.user,
            ticket=ticket,
            to_status=to_status,
            note=form.cleaned_data["note"],
            resolution_summary=form.cleaned_data["resolution_summary"],
        )
    except services.EditConflict as conflict:
        return _conflict(request, conflict.current, "transition_form", TransitionForm)
    except ValidationError as error:
        _add_errors(form, error)
        return _render_ticket(request, ticket, status=400, transition_form=form)
    messages.success(
        request,
        _("工单状态已改为“%(status)s”。") % {"status": Ticket.Status(to_status).label},
    )
    return redirect(ticket)


@require_http_methods(["POST"])
@access.role_required(*ALL_ROLES)
def ticket_link(request: HttpRequest, reference: str) -> HttpResponse:
    ticket = _changing(request, reference)
    form = ReferenceForm(request.POST)
    if not form.is_valid():
        return _render_ticket(request, ticket, status=400, reference_form=form)
    if _is_stale(form, ticket):
        return _conflict(request, ticket, "reference_form", ReferenceForm)
    other = selectors.ticket_by_reference(
        user=request.user, reference=form.cleaned_data["reference"]
    )
    if other is None:
        form.add_error("reference", _("没有找到这张工单。"))
        return _render_ticket(request, ticket, status=400, reference_form=form)
    try:
        services.ticket_link(by=request.user, ticket=ticket, other=other)
    except ValidationError as error:
        _add_errors(form, error)
        return _render_ticket(request, ticket, status=400, reference_form=form)
    messages.success(request, _("已关联工单 %(ref)s。") % {"ref": other.reference})
    return redirect(ticket)


@require_http_methods(["GET", "POST"])
@access.role_required(*ALL_ROLES)
def ticket_merge(request: HttpRequest, reference: str) -> HttpResponse:
    """Merge this ticket (the duplicate) into another one, after a confirmation step."""
    ticket = _changing(request, reference)
    form = ReferenceForm(request.POST or request.GET)
    if not form.is_valid():
        return _render_ticket(request, ticket, status=400, reference_form=form)
    target = selectors.ticket_by_reference(
        user=request.user, reference=form.cleaned_data["reference"]
    )
    if target is None or target.pk == ticket.pk:
        form.add_error("reference", _("没有找到可合并的另一张工单。"))
        return _render_ticket(request, ticket, status=400, reference_form=form)
    if target.customer_id != ticket.customer_id:
        form.add_error("reference", services.DIFFERENT_CUSTOMERS)
        return _render_ticket(request, ticket, status=400, reference_form=form)
    if _is_stale(form, ticket):
        return _conflict(request, ticket, "reference_form", ReferenceForm)
    if request.method == "POST":
        try:
            services.ticket_merge(by=request.user, target=target, duplicate=ticket)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect(ticket)
        messages.success(
            request,
            _("工单 %(dup)s 已合并到本工单。") % {"dup": ticket.reference},
        )
        return redirect(target)
    return render(
        request,
        "service/ticket_merge.html",
        {"ticket": ticket, "target": target, "form": form},
    )


# --- work orders -------------------------------------------------------------------------


@require_http_methods(["POST"])
@access.role_required(*ALL_ROLES)
@submit_once
def workorder_create(request: HttpRequest, reference: str) -> HttpResponse:
    ticket = _changing(request, reference, "service.add_workorder")
    access.require_perm(request.user, "service.change_ticket")
    form = WorkOrderForm(request.POST, departments=selectors.departments())
    if not form.is_valid():
        return _render_ticket(request, ticket, status=400, workorder_form=form)
    if _is_stale(form, ticket):
        return _conflict(
            request,
            ticket,
            "workorder_form",
            WorkOrderForm,
            departments=selectors.departments(),
        )
    data = dict(form.cleaned_data)
    data.pop("version")
    try:
        order = services.workorder_create(by=request.user, ticket=ticket, **data)
    except ValidationError as error:
        _add_errors(form, error)
        return _render_ticket(request, ticket, status=400, workorder_form=form)
    messages.success(
        request,
        _("已向%(dept)s发出后台工单。") % {"dept": order.department.name},
    )
    return redirect(ticket.get_absolute_url() + "#work-orders")


@require_http_methods(["POST"])
@access.role_required(*ALL_ROLES)
def workorder_rate(request: HttpRequest, pk: int) -> HttpResponse:
    order = access.get_object_for(
        WorkOrder.objects.filter(
            ticket__in=Ticket.objects.visible_to(request.user)
        ).select_related("ticket"),
        pk,
    )
    access.require_perm(request.user, "service.change_ticket")
    form = RatingForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("请选择 1 到 5 分。"))
    else:
        try:
            services.workorder_rate(
                by=request.user, order=order, rating=form.cleaned_data["rating"]
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("评分已保存。"))
    return redirect(order.ticket.get_absolute_url() + "#work-orders")


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def workorder_list(request: HttpRequest) -> HttpResponse:
    params = bounds.params(request)
    finished = params.flag("state", "finished")
    page = paginate(
        selectors.workorder_queue(user=request.user, finished=finished),
        params.page(),
        PAGE_SIZE,
    )
    page.object_list = selectors.mark_late(list(page.object_list), timezone.now())
    context = {
        "page": page,
        "finished": finished,
        "department": request.user.team.department if request.user.team_id else None,
    }
    return render(request, "service/workorder_list.html", context)


@require_http_methods(["GET", "POST"])
@access.role_required(*ALL_ROLES)
def workorder_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = selectors.workorder_for(user=request.user, pk=pk)
    if order is None:
        raise Http404
    can_work = services.can_work_on(request.user, order)
    if request.method == "POST" and not can_work:
        raise PermissionDenied
    form = WorkOrderUpdateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.workorder_update(
                by=request.user,
                order=order,
                status=form.cleaned_data["status"],
                result=form.cleaned_data["result"],
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("后台工单已更新。"))
            return redirect("service:workorder_detail", pk=order.pk)
    selectors.mark_late([order], timezone.now())
    context = {
        "order": order,
        "form": form,
        "can_work": can_work and order.status in ("open", "in_progress"),
        "can_see_ticket": Ticket.objects.visible_to(request.user)
        .filter(pk=order.ticket_id)
        .exists(),
    }
    return render(
        request,
        "service/workorder_detail.html",
        context,
        status=400 if form.is_bound and form.errors else 200,
    )


# --- assets and dealers ------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@access.role_required(*ASSET_ROLES)
@submit_once
def asset_create(request: HttpRequest) -> HttpResponse:
    access.require_perm(request.user, "service.add_asset")
    customer_id = request.POST.get("customer") or bounds.params(request).id("customer")
    if not customer_id:
        raise Http404
    customer = _visible_customer(request, customer_id)
    form = AssetForm(
        request.POST or None, dealers=selectors.dealer_choices(user=request.user)
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.asset_create(
                by=request.user, customer=customer, data=form.cleaned_data
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("资产已添加。"))
            return redirect(customer)
    return render(
        request,
        "service/asset_form.html",
        {"form": form, "customer": customer},
        status=400 if form.is_bound and form.errors else 200,
    )


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def asset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    asset = access.get_object_for(
        Asset.objects.filter(
            customer__in=Customer.objects.visible_to(request.user)
        ).select_related("customer", "dealer"),
        pk,
    )
    return render(
        request, "service/asset_detail.html", selectors.asset_page(asset=asset)
    )


@require_http_methods(["GET"])
@access.role_required(*REPORT_ROLES)
def dealer_report(request: HttpRequest) -> HttpResponse:
    form = DealerReportForm(request.GET or {"days": 90})
    days = form.cleaned_data["days"] if form.is_valid() else 90
    since = timezone.now() - timezone.timedelta(days=days) if days else None
    context = {
        "form": form,
        "rows": selectors.dealer_report(user=request.user, since=since),
    }
    return render(request, "service/dealer_report.html", context)


# --- the public intake form (no login) ---------------------------------------------------


@access.public
@require_http_methods(["GET", "POST"])
@submit_once
def intake(request: HttpRequest) -> HttpResponse:
    if request.method == "GET" and bounds.params(request).flag("done"):
        reference = request.session.get(INTAKE_SESSION_KEY)
        if reference:
            return render(
                request,
                "service/intake_done.html",
                {
                    "reference": reference,
                    "follow_token": request.session.get(INTAKE_FOLLOW_KEY, ""),
                    "follow_days": settings.KEHU_FOLLOW_LINK_DAYS,
                },
            )
    form = IntakeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            ticket = services.intake_submit(
                # The address as the login limits see it: behind our proxies, the hop
                # the outermost appended, not what the client wrote.
                ip=network.client_ip(request) or "",
                phone=form.cleaned_data["phone"],
                name=form.cleaned_data["name"],
                ticket_type=form.cleaned_data["ticket_type"],
                description=form.cleaned_data["description"],
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            request.session[INTAKE_SESSION_KEY] = ticket.reference
            request.session[INTAKE_FOLLOW_KEY] = services.follow_token(ticket)
            return redirect(reverse("intake") + "?done=1")
    return render(
        request,
        "service/intake_form.html",
        {"form": form},
        status=400 if form.is_bound and form.errors else 200,
    )


@access.public
@require_http_methods(["GET", "POST"])
@submit_once
def intake_follow(request: HttpRequest, token: str) -> HttpResponse:
    """The customer's personal page for one ticket: status, public replies, and a
    message or photo of theirs (the link is the key: signed, expiring, no login)."""
    try:
        if len(token) > FOLLOW_TOKEN_MAX or not token.isprintable():
            raise services.FollowLinkError(expired=False)
        ticket = services.ticket_for_follow_token(token)
    except services.FollowLinkError as error:
        return render(
            request,
            "service/follow_invalid.html",
            {"expired": error.expired},
            status=410 if error.expired else 404,
        )
    form = FollowMessageForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.ticket_customer_message_add(
                ticket=ticket,
                body=form.cleaned_data["body"],
                photo=form.cleaned_data.get("photo"),
                ip=network.client_ip(request) or "",
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("留言已收到，客服会尽快处理。"))
            return redirect(request.path)
    context = selectors.follow_page(ticket=ticket)
    context["form"] = form
    return render(
        request,
        "service/follow.html",
        context,
        status=400 if form.is_bound and form.errors else 200,
    )
