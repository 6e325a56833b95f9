from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from customers import masking, selectors, services
from customers.forms import CustomerForm
from customers.models import Customer

ALL_ROLES = tuple(Role.values)
EDITOR_ROLES = (Role.SALES, Role.MANAGER, Role.ADMIN)
PAGE_SIZE = 25


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def customer_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")[:100]
    sort = request.GET.get("sort", "recent")
    customers = selectors.customer_list(user=request.user, query=query, sort=sort)
    page = Paginator(customers, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "query": query,
        "sort": sort,
        "can_see_pii": masking.can_see_pii(request.user),
        "can_add": request.user.has_perm("customers.add_customer"),
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
    customer = access.get_object_for(
        Customer.objects.visible_to(request.user).select_related("owner", "team"), pk
    )
    context = {
        "customer": customer,
        "history": selectors.customer_history(customer=customer),
        "can_see_pii": masking.can_see_pii(request.user),
        "can_edit": request.user.has_perm("customers.change_customer"),
    }
    return render(request, "customers/customer_detail.html", context)


@require_http_methods(["GET", "POST"])
@access.role_required(*EDITOR_ROLES)
def customer_create(request: HttpRequest) -> HttpResponse:
    form = CustomerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "version"}
        try:
            customer = services.customer_create(by=request.user, **data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("客户已创建。"))
            return redirect(customer)
    return render(request, "customers/customer_form.html", {"form": form})


@require_http_methods(["GET", "POST"])
@access.role_required(*EDITOR_ROLES)
def customer_edit(request: HttpRequest, pk: int) -> HttpResponse:
    customer = access.get_object_for(Customer.objects.visible_to(request.user), pk)
    form = CustomerForm(
        request.POST or None, instance=customer, initial={"version": customer.version}
    )
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "version"}
        try:
            services.customer_update(
                by=request.user,
                customer=customer,
                version=form.cleaned_data["version"] or 0,
                **data,
            )
        except services.EditConflict as conflict:
            form = CustomerForm(
                instance=conflict.current, initial={"version": conflict.current.version}
            )
            messages.error(
                request,
                _("该客户已被他人修改。下面显示的是最新内容，请核对后重新保存。"),
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("客户已保存。"))
            return redirect(customer)
    return render(
        request, "customers/customer_form.html", {"form": form, "customer": customer}
    )
