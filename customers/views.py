from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from crm.core import audit, bounds, form_renderer
from crm.core.once import submit_once
from crm.core.pagination import paginate
from customers import hooks, masking, search, selectors, services, timeline
from customers.forms import (
    DUPLICATE_FIELDS,
    ORGANIZATION_FIELDS,
    ContactQuickForm,
    CustomerFilterForm,
    CustomerForm,
    FollowUpForm,
    PoolFilterForm,
    ProfileForm,
    ReassignForm,
    ReleaseForm,
    RevealForm,
    organization_choices,
)
from customers.models import Customer, FollowUp

ALL_ROLES = tuple(Role.values)
EDITOR_ROLES = (Role.SALES, Role.MANAGER, Role.ADMIN)
# Who may open the public pool (公海); salespeople and managers claim from it.
POOL_ROLES = (Role.SALES, Role.MANAGER, Role.ADMIN)
CONTACT_ROLES = ALL_ROLES
PAGE_SIZE = 25


def _visible_customer(request: HttpRequest, pk: int) -> Customer:
    return access.get_object_for(
        Customer.objects.visible_to(request.user).select_related(
            "owner", "team", "organization", "parent"
        ),
        pk,
    )


def _organizations(request: HttpRequest):  # noqa: ANN202 - a QuerySet
    return (
        Customer.objects.visible_to(request.user)
        .filter(is_organization=True, merged_into__isnull=True)
        .order_by("name")
    )


@require_http_methods(["GET", "POST"])
@access.role_required(*ALL_ROLES)
def customer_list(request: HttpRequest) -> HttpResponse:
    # The search form posts; a phone or ID number comes back as ?s=<token>, never
    # as digits in the address (customers/search.py).
    owners = list(selectors.owner_choices(user=request.user))
    if request.method == "POST":
        # An over-long search is a form error here, not a redirect Django refuses.
        params = request.POST
    else:
        params = search.resolved(request.session, request.GET)
        if params is None:
            return search.redirect_without_pii(request, request.path, request.GET)
    form = CustomerFilterForm(
        params or None,
        owners=owners,
        teams=list(selectors.team_choices(user=request.user)),
        user=request.user,
        renderer=form_renderer.FAST,
    )
    valid = not form.is_bound or form.is_valid()
    if request.method == "POST" and valid:
        return search.redirect_without_pii(request, request.path, request.POST)
    query = form.cleaned_data.get("q", "") if form.is_bound and valid else ""
    sort = (
        form.cleaned_data.get("sort") if form.is_bound and valid else ""
    ) or "recent"
    customers = selectors.customer_list(
        user=request.user,
        query=query,
        sort=sort,
        filters=form.filters() if form.is_bound and valid else {},
    )
    if not valid:
        # A filter that does not parse must not silently widen the list to everyone.
        customers = customers.none()
    page = paginate(customers, bounds.params(request).page(), PAGE_SIZE)
    context = {
        "page": selectors.list_page(page, query=query, sort=sort),
        "form": form,
        "filter_errors": None if valid else form.errors,
        "query": query,
        "sort": sort,
        "can_see_pii": masking.can_see_pii(request.user),
        "can_add": request.user.has_perm("customers.add_customer"),
        "can_log_contact": request.user.has_perm("customers.add_contactlog"),
        "can_reassign": request.user.has_perm("customers.reassign_customer"),
        "can_claim": request.user.role in (Role.SALES, Role.MANAGER),
        "can_use_pool": request.user.role in POOL_ROLES,
        "owners": owners,
        "filtered_owner": next(
            (
                o
                for o in owners
                if valid and form.is_bound and form.cleaned_data.get("owner") == o.pk
            ),
            None,
        ),
        "contact_form": ContactQuickForm(),
    }
    template = (
        "customers/_customer_results.html"
        if request.htmx
        else "customers/customer_list.html"
    )
    return render(request, template, context)


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _visible_customer(request, pk)
    audit.record(request, audit.CUSTOMER_VIEWED, obj=customer)
    context = selectors.customer_page(user=request.user, customer=customer)
    context.update(
        history=selectors.customer_history(
            customer=customer, can_see_pii=context["can_see_pii"]
        ),
        can_edit=request.user.has_perm("customers.change_customer"),
        can_log_contact=request.user.has_perm("customers.add_contactlog")
        and not customer.merged_into_id,
        can_reveal=request.user.has_perm("customers.reveal_customer_pii"),
        can_release=customer.owner_id == request.user.pk,
        can_merge=request.user.has_perm("customers.merge_customer"),
        can_claim=customer.owner_id is None
        and customer.is_verified
        and request.user.role in (Role.SALES, Role.MANAGER),
        can_verify=not customer.is_verified
        and not customer.merged_into_id
        and request.user.has_perm("customers.verify_customer"),
        contact_form=_contact_form(request, renderer=form_renderer.FAST),
        reveal_form=RevealForm(renderer=form_renderer.FAST),
    )
    return render(request, "customers/customer_detail.html", context)


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def customer_timeline(request: HttpRequest, pk: int) -> HttpResponse:
    """The next page of the timeline (htmx), older than `before`."""
    customer = _visible_customer(request, pk)
    cursor = timeline.Cursor.parse(bounds.params(request).text("before"))
    context = selectors.customer_page(
        user=request.user, customer=customer, cursor=cursor
    )
    return render(request, "customers/_timeline.html", context)


@require_http_methods(["POST"])
@access.role_required(*EDITOR_ROLES)
def duplicate_check(request: HttpRequest) -> HttpResponse:
    """A phone or ID number checked while the customer form is filled in (htmx, on
    change): the same refusal the form gives on saving (services.check_numbers_free:
    the holder named only if in scope, hidden hits audited and rate-limited)."""
    if not (
        request.user.has_perm("customers.add_customer")
        or request.user.has_perm("customers.change_customer")
    ):
        raise PermissionDenied
    field = bounds.params(request).choice("field", DUPLICATE_FIELDS)
    if not field:
        return HttpResponseBadRequest(_("未知的字段。"))
    customer_pk = bounds.params(request).id("customer")
    customer = _visible_customer(request, customer_pk) if customer_pk else None
    raw = request.POST.get(field, "")[:200]
    message, ok = "", False
    if raw.strip():
        try:
            if field == "id_number":
                services.check_numbers_free(
                    by=request.user, id_number=raw, customer=customer
                )
            else:
                services.check_numbers_free(
                    by=request.user,
                    phone_numbers=raw.replace("，", ",").split(","),
                    customer=customer,
                )
        except ValidationError as error:
            message = " ".join(error.messages)
        else:
            ok = True
    return render(
        request, "customers/_duplicate_check.html", {"message": message, "ok": ok}
    )


@require_http_methods(["POST"])
@access.role_required(*EDITOR_ROLES)
def organization_options(request: HttpRequest) -> HttpResponse:
    """The <option>s of the customer form's organisation or parent select that match
    what was typed in the search box above it (htmx)."""
    field = bounds.params(request).choice("field", ORGANIZATION_FIELDS)
    if not field:
        return HttpResponseBadRequest(_("未知的字段。"))
    selected = request.POST.get(field, "")
    choices = organization_choices(
        _organizations(request),
        query=request.POST.get(f"{field}_search", "")[:100].strip(),
        keep=selected,
    )
    return render(
        request,
        "customers/_organization_options.html",
        {"choices": choices, "selected": selected},
    )


@require_http_methods(["GET", "POST"])
@access.role_required(*EDITOR_ROLES)
@submit_once
def customer_create(request: HttpRequest) -> HttpResponse:
    form = CustomerForm(request.POST or None, organizations=_organizations(request))
    duplicates = []
    visible_ids: set[int] = set()
    if request.method == "POST" and form.is_valid():
        arguments = form.service_arguments()
        try:
            duplicates, visible_ids = _look_alikes(request, arguments)
            # Show look-alikes before saving; saving anyway needs a second submit.
            if duplicates and not form.cleaned_data.get("confirm_duplicates"):
                form = CustomerForm(
                    {**request.POST.dict(), "confirm_duplicates": "on"},
                    organizations=_organizations(request),
                )
                form.is_valid()
            else:
                customer = services.customer_create(by=request.user, **arguments)
                messages.success(request, _("客户已创建。"))
                return redirect(customer)
        except ValidationError as error:
            _add_errors(form, error)
    return render(
        request,
        "customers/customer_form.html",
        {"form": form, "duplicates": duplicates, "visible_duplicate_ids": visible_ids},
    )


def _look_alikes(
    request: HttpRequest, arguments: dict
) -> tuple[list[Customer], set[int]]:
    """Existing customers like the one being entered, and which of them the user sees.

    One outside the user's scope is listed without its name (team only); each is
    audited and counts toward the hourly reveal limit, as the refusal of its phone or
    ID number does. Those past the limit are left out of the list, and once it is
    reached a new phone or ID number is refused before any look-up
    (services.check_numbers_free).
    """
    if services.lookups_exhausted(request.user):
        services.check_numbers_free(
            by=request.user,
            phone_numbers=arguments["phone_numbers"],
            id_number=arguments["id_number"],
        )
    duplicates = services.find_duplicates(
        phone_numbers=arguments["phone_numbers"],
        id_number=arguments["id_number"] or "",
        name=arguments["data"]["name"],
        organization_name=getattr(arguments["data"].get("organization"), "name", ""),
    )
    visible_ids = set(
        Customer.objects.visible_to(request.user)
        .filter(pk__in=[d.pk for d in duplicates])
        .values_list("pk", flat=True)
    )
    hidden = [d for d in duplicates if d.pk not in visible_ids]
    if not hidden:
        return duplicates, visible_ids
    with transaction.atomic():
        # Under the lock customer_reveal takes: parallel posts share one budget.
        services.lookup_lock(request.user)
        budget = settings.KEHU_REVEAL_HOURLY_LIMIT - selectors.reveals_last_hour(
            request.user
        )
        shown = hidden[: max(budget, 0)]
        for candidate in shown:
            services.audit_hidden_hit(
                by=request.user, customer=candidate, detail="look-alike"
            )
    kept = {d.pk for d in shown} | visible_ids
    return [d for d in duplicates if d.pk in kept], visible_ids


def _add_errors(form: CustomerForm, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


@require_http_methods(["GET", "POST"])
@access.role_required(*EDITOR_ROLES)
def customer_edit(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _visible_customer(request, pk)
    form = CustomerForm(
        request.POST or None,
        instance=customer,
        initial={"version": customer.version, "phone": customer.phone},
        organizations=_organizations(request).exclude(pk=customer.pk),
    )
    if request.method == "POST" and form.is_valid():
        version = form.cleaned_data["version"] or 0
        try:
            services.customer_update(
                by=request.user,
                customer=customer,
                version=version,
                **form.service_arguments(),
            )
        except services.EditConflict as conflict:
            messages.error(
                request,
                _("该客户已被他人修改。下面显示的是最新内容，请核对后重新保存。"),
            )
            form = CustomerForm(
                instance=conflict.current,
                initial={
                    "version": conflict.current.version,
                    "phone": conflict.current.phone,
                },
                organizations=_organizations(request).exclude(pk=customer.pk),
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("客户已保存。"))
            return redirect(customer)
    return render(
        request, "customers/customer_form.html", {"form": form, "customer": customer}
    )


@require_http_methods(["GET", "POST"])
@access.role_required(*EDITOR_ROLES)
def customer_profile_edit(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _visible_customer(request, pk)
    profile = getattr(customer, "profile", None)
    form = ProfileForm(request.POST or None, instance=profile)
    differences, status = [], 200
    if request.method == "POST" and form.is_valid():
        try:
            services.profile_update(
                by=request.user,
                customer=customer,
                data=form.cleaned_data,
                version=form.cleaned_data["version"] or 0,
            )
        except services.EditConflict as conflict:
            # Nothing saved: show what differs, then the saved profile to edit again.
            messages.error(
                request,
                _(
                    "一对一档案已被他人修改，您的修改没有保存。"
                    "下面列出您填写的与现在保存的不同之处，请核对后重新保存。"
                ),
            )
            differences, status = form.differences(conflict.current), 409
            form = ProfileForm(instance=conflict.current)
        else:
            messages.success(request, _("一对一档案已保存。"))
            return redirect(customer)
    context = {"form": form, "customer": customer, "differences": differences}
    return render(request, "customers/profile_form.html", context, status=status)


def _contact_form(request: HttpRequest, **kwargs: Any) -> ContactQuickForm:
    """A blank quick-contact form, its channel the one the user logs most."""
    usual = selectors.usual_channel(user=request.user)
    return ContactQuickForm(initial={"channel": usual} if usual else None, **kwargs)


@require_http_methods(["GET", "POST"])
@access.role_required(*CONTACT_ROLES)
@submit_once
def contact_create(request: HttpRequest, pk: int) -> HttpResponse:
    """Quick contact entry (htmx): answers the refreshed form plus a success note."""
    customer = _visible_customer(request, pk)
    if request.method == "GET":
        return render(
            request,
            "customers/_contact_form.html",
            {
                "customer": customer,
                "contact_form": _contact_form(request),
                "show_name": True,
            },
        )
    form = ContactQuickForm(request.POST)
    logged = None
    if form.is_valid():
        try:
            logged = services.contact_log_create(
                by=request.user, customer=customer, **form.cleaned_data
            )
        except ValidationError as error:
            form.add_error(None, error)
        except PermissionDenied:
            raise
    if not request.htmx:
        if logged:
            messages.success(request, _("联系记录已保存。"))
        else:
            messages.error(
                request,
                _("联系记录未保存：%(errors)s") % {"errors": form.errors.as_text()},
            )
        return redirect(customer)
    from_list = request.POST.get("show_name") == "1"
    response = render(
        request,
        "customers/_contact_form.html",
        {
            "customer": customer,
            "contact_form": _contact_form(request) if logged else form,
            "logged": logged,
            "show_name": from_list,
            # The list's row of this customer, swapped in place (hx-swap-oob).
            "row": logged
            and from_list
            and selectors.customer_row(user=request.user, customer=customer),
            "can_see_pii": masking.can_see_pii(request.user),
            "can_reassign": request.user.has_perm("customers.reassign_customer"),
            "can_log_contact": True,
        },
    )
    if logged:
        # Lets the page refresh its timeline and follow-ups without a reload.
        response["HX-Trigger"] = "contact-logged"
    return response


@require_http_methods(["GET", "POST"])
@access.role_required(*EDITOR_ROLES)
@submit_once
def followup_create(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _visible_customer(request, pk)
    form = FollowUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.followup_create(
            by=request.user,
            customer=customer,
            assignee=customer.owner or request.user,
            **form.cleaned_data,
        )
        messages.success(request, _("跟进已安排。"))
        return redirect(customer)
    return render(
        request, "customers/followup_form.html", {"form": form, "customer": customer}
    )


@require_http_methods(["POST"])
@access.role_required(*EDITOR_ROLES)
def followup_complete(request: HttpRequest, pk: int) -> HttpResponse:
    followup = access.get_object_for(
        FollowUp.objects.filter(
            customer__in=Customer.objects.visible_to(request.user)
        ).select_related("customer"),
        pk,
    )
    services.followup_complete(by=request.user, followup=followup)
    messages.success(request, _("跟进已完成。"))
    return redirect(
        request.POST.get("next") if _safe_next(request) else followup.customer
    )


def _safe_next(request: HttpRequest) -> bool:
    target = request.POST.get("next", "")
    return target.startswith("/") and not target.startswith("//")


@require_http_methods(["POST"])
@access.role_required(*ALL_ROLES)
def customer_reveal(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _visible_customer(request, pk)
    form = RevealForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("请说明查看原因。"))
        return redirect(customer)
    with transaction.atomic():
        # One reveal at a time per user, so parallel requests cannot pass the limit.
        get_user_model().objects.select_for_update(no_key=True).filter(
            pk=request.user.pk
        ).first()
        limit = settings.KEHU_REVEAL_HOURLY_LIMIT
        if selectors.reveals_last_hour(request.user) >= limit:
            audit.record(
                request,
                audit.ID_REVEALED,
                obj=customer,
                outcome=audit.DENIED,
                detail=f"hourly limit {limit}",
            )
            refusal = _(
                "您在一小时内已查看 %(limit)s 次完整身份证号，达到上限，请稍后再试。"
            ) % {"limit": limit}
            if not request.htmx:
                messages.error(request, refusal)
                return redirect(customer)
            return render(
                request, "customers/_reveal_refused.html", {"message": refusal}
            )
        number = services.customer_reveal_id_number(
            by=request.user, customer=customer, reason=form.cleaned_data["reason"]
        )
    # The clear number must not stay in any cache (the middleware says so for every
    # signed-in page; said here too because this response is the one that matters).
    response = render(
        request, "customers/_revealed.html", {"number": number, "customer": customer}
    )
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["POST"])
@access.role_required(Role.MANAGER, Role.ADMIN)
def customer_reassign(request: HttpRequest) -> HttpResponse:
    form = ReassignForm(request.POST, owners=selectors.owner_choices(user=request.user))
    if form.is_valid():
        try:
            moved = services.customers_reassign(
                by=request.user,
                customer_ids=form.cleaned_data["customer_ids"],
                new_owner=form.cleaned_data["new_owner"],
                from_owner=form.cleaned_data.get("all_of_owner"),
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("已转移 %(n)d 位客户。") % {"n": moved})
    else:
        messages.error(
            request, _("转移失败：%(errors)s") % {"errors": form.errors.as_text()}
        )
    return redirect("customers:customer_list")


@require_http_methods(["POST"])
@access.role_required(Role.SALES, Role.MANAGER)
def pool_claim(request: HttpRequest, pk: int) -> HttpResponse:
    # The pool is visible to every salesperson, whatever team owned the customer before.
    try:
        customer = services.pool_claim(by=request.user, customer_id=pk)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("customers:pool_list")
    messages.success(request, _("已领取客户“%(name)s”。") % {"name": customer.name})
    return redirect(customer)


@require_http_methods(["POST"])
@access.role_required(Role.SERVICE, Role.MANAGER, Role.ADMIN)
def customer_verify(request: HttpRequest, pk: int) -> HttpResponse:
    """An agent confirms an unverified contact (the desk's caller, /report/): it
    reaches sales through the pool. Back to the ticket page when posted from one."""
    customer = _visible_customer(request, pk)
    try:
        services.customer_verify(by=request.user, customer=customer)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            _("已核实客户“%(name)s”，客户已进入公海。") % {"name": customer.name},
        )
    return redirect(request.POST.get("next") if _safe_next(request) else customer)


@require_http_methods(["POST"])
@access.role_required(*EDITOR_ROLES)
def customer_review_clear(request: HttpRequest, pk: int) -> HttpResponse:
    """待核查 done: someone checked the values an import left out."""
    customer = _visible_customer(request, pk)
    services.customer_review_clear(by=request.user, customer=customer)
    messages.success(request, _("已标记为核查完毕。"))
    return redirect(customer)


@require_http_methods(["POST"])
@access.role_required(*EDITOR_ROLES)
def pool_release(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _visible_customer(request, pk)
    form = ReleaseForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        # The service checks who may release first (403), then the reason.
        services.pool_release(by=request.user, customer=customer, reason=reason)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(customer)
    messages.success(request, _("客户已放回公海。"))
    return redirect("customers:customer_list")


@require_http_methods(["GET", "POST"])
@access.role_required(*POOL_ROLES)
def pool_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return search.redirect_without_pii(request, request.path, request.POST)
    params = search.resolved(request.session, request.GET)
    if params is None:
        return search.redirect_without_pii(request, request.path, request.GET)
    form = PoolFilterForm(params)
    query = form.cleaned_data.get("q", "") if form.is_valid() else ""
    customers = selectors.pool_list(query=query, filters=form.filters())
    if not form.is_valid():
        customers = customers.none()
    page = paginate(customers, bounds.params(request).page(), PAGE_SIZE)
    page.object_list = selectors.attach_pool_events(list(page.object_list))
    context = {
        "page": page,
        "query": query,
        "form": form,
        "can_claim": request.user.role in (Role.SALES, Role.MANAGER),
    }
    return render(request, "customers/pool_list.html", context)


@require_http_methods(["GET"])
@access.role_required(*POOL_ROLES)
def pool_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """A pool customer as a salesperson may see it before claiming: masked, with
    who released it, when and why. Only customers in the pool (404 otherwise)."""
    customer = access.get_object_for(
        Customer.objects.in_pool().filter(merged_into__isnull=True), pk
    )
    audit.record(request, audit.CUSTOMER_VIEWED, obj=customer, detail="pool preview")
    context = selectors.pool_preview(customer=customer)
    context["can_claim"] = request.user.role in (Role.SALES, Role.MANAGER)
    return render(request, "customers/pool_preview.html", context)


@require_http_methods(["GET", "POST"])
@access.role_required(Role.MANAGER, Role.ADMIN)
def customer_merge(request: HttpRequest, pk: int) -> HttpResponse:
    """Pick a duplicate of this customer, compare the two, then merge on confirmation."""
    survivor = _visible_customer(request, pk)
    visible = Customer.objects.visible_to(request.user).filter(merged_into__isnull=True)
    if request.method == "POST" and "q" in request.POST:
        return search.redirect_without_pii(request, request.path, request.POST)
    params = search.resolved(request.session, request.GET)
    if params is None:
        return search.redirect_without_pii(request, request.path, request.GET)
    other_id = request.POST.get("other") or bounds.params(request).id("other")
    other = (
        access.get_object_for(visible.exclude(pk=survivor.pk), other_id)
        if other_id
        else None
    )
    if request.method == "POST" and other is not None:
        try:
            services.customer_merge(by=request.user, survivor=survivor, duplicate=other)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request, _("已将“%(other)s”合并到本客户。") % {"other": other.name}
            )
            return redirect(survivor)
    query = bounds.Params(params).search()
    candidates = services.find_duplicates(
        phone_numbers=[p.number for p in survivor.phones.all()],
        name=survivor.name,
        exclude_pk=survivor.pk,
    )
    candidates = [c for c in candidates if visible.filter(pk=c.pk).exists()]
    if query:
        candidates = list(
            selectors.customer_list(user=request.user, query=query).exclude(
                pk=survivor.pk
            )[:20]
        )
    context = {
        "customer": survivor,
        "other": other,
        # What other apps' merge hooks will do (入伙 bookings kept or cancelled, ...).
        "merge_notes": hooks.merge_preview(survivor, other) if other else [],
        "candidates": candidates,
        "query": query,
        "can_see_pii": masking.can_see_pii(request.user),
    }
    return render(request, "customers/customer_merge.html", context)
