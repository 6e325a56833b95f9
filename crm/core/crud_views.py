"""The settings area's pages: the index and the generic list, form and delete pages of
every `crud.Resource` (see crm/core/crud.py). An app mounts its resources with
`resource_urls(RESOURCES)` in its own URLconf."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import ProtectedError, RestrictedError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from crm.core import bounds, crud
from crm.core.pagination import paginate


@require_http_methods(["GET"])
@access.role_required(Role.ADMIN)
def settings_index(request: HttpRequest) -> HttpResponse:
    return render(request, "core/settings/index.html", {"sections": crud.sections()})


def _url(request: HttpRequest, name: str, *args: Any) -> str:
    namespace = request.resolver_match.namespace
    return reverse(f"{namespace}:{name}" if namespace else name, args=args)


def list_page(
    request: HttpRequest, resource: crud.Resource, *, extra: dict | None = None
) -> HttpResponse:
    """Search, filters and one page of rows: a count and a page query, whatever the
    size (the columns read only what `resource.queryset` selects)."""
    params = bounds.params(request)
    query = params.search("q")
    rows = resource.rows()
    condition = resource.search_condition(query)
    if condition is not None:
        rows = rows.filter(condition)
    active = []
    for item in resource.filters:
        choices = item.choices()
        value = params.choice(item.name, [str(v) for v, _label in choices])
        if value:
            rows = rows.filter(item.lookup(value))
        active.append({"filter": item, "choices": choices, "value": value})
    page = paginate(rows, params.page(), resource.per_page)
    page.object_list = [
        {
            "object": obj,
            "url": _url(request, f"{resource.key}_edit", obj.pk),
            "cells": [column.value(obj) for column in resource.columns],
        }
        for obj in page.object_list
    ]
    context = {
        "resource": resource,
        "page": page,
        "query": query,
        "filters": active,
        "create_url": _url(request, f"{resource.key}_create")
        if resource.can_create
        else "",
        **(extra or {}),
    }
    return render(request, resource.list_template, context)


def _form_page(
    request: HttpRequest, resource: crud.Resource, pk: int | None
) -> HttpResponse:
    instance = access.get_object_for(resource.rows(), pk) if pk is not None else None
    form = resource.form(
        request.POST if request.method == "POST" else None,
        instance=instance,
        **resource.form_kwargs(),
    )
    if request.method == "POST" and form.is_valid():
        try:
            saved = crud.resource_save(
                by=request.user,
                resource=resource,
                instance=instance or resource.model(),
                data=form.cleaned_data,
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(
                request,
                _("已保存%(what)s：%(name)s")
                % {"what": resource.item_label, "name": saved},
            )
            return redirect(_url(request, f"{resource.key}_list"))
    context = {
        "resource": resource,
        "form": form,
        "object": instance,
        "list_url": _url(request, f"{resource.key}_list"),
        "delete_url": _url(request, f"{resource.key}_delete", instance.pk)
        if instance is not None and resource.can_delete
        else "",
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "core/settings/form.html", context, status=status)


def _add_errors(form: Any, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, error)


def _delete_page(
    request: HttpRequest, resource: crud.Resource, pk: int
) -> HttpResponse:
    instance = access.get_object_for(resource.rows(), pk)
    blocker = resource.delete_blocker(instance) if resource.delete_blocker else None
    if request.method == "POST" and not blocker:
        try:
            crud.resource_delete(by=request.user, resource=resource, instance=instance)
        except (ProtectedError, RestrictedError):
            blocker = _("仍有记录在使用它，不能删除；可以改名或停用。")
        else:
            messages.success(
                request,
                _("已删除%(what)s：%(name)s")
                % {"what": resource.item_label, "name": instance},
            )
            return redirect(_url(request, f"{resource.key}_list"))
    context = {
        "resource": resource,
        "object": instance,
        "blocker": blocker,
        "edit_url": _url(request, f"{resource.key}_edit", pk),
    }
    status = 409 if request.method == "POST" and blocker else 200
    return render(request, "core/settings/confirm_delete.html", context, status=status)


def resource_urls(resources: list[crud.Resource]) -> list[URLPattern]:
    """list, create, edit and delete URLs of each resource: `<key>_list` ..."""
    patterns = []
    for resource in resources:
        guard = access.role_required(*resource.roles)

        def listing(request: HttpRequest, _r: crud.Resource = resource) -> HttpResponse:
            return list_page(request, _r)

        def create(request: HttpRequest, _r: crud.Resource = resource) -> HttpResponse:
            return _form_page(request, _r, None)

        def edit(
            request: HttpRequest, pk: int, _r: crud.Resource = resource
        ) -> HttpResponse:
            return _form_page(request, _r, pk)

        def delete(
            request: HttpRequest, pk: int, _r: crud.Resource = resource
        ) -> HttpResponse:
            return _delete_page(request, _r, pk)

        key = resource.key
        patterns.append(
            path(
                f"{key}/",
                require_http_methods(["GET"])(guard(listing)),
                name=f"{key}_list",
            )
        )
        if resource.can_create:
            patterns.append(
                path(
                    f"{key}/new/",
                    require_http_methods(["GET", "POST"])(guard(create)),
                    name=f"{key}_create",
                )
            )
        patterns.append(
            path(
                f"{key}/<int:pk>/",
                require_http_methods(["GET", "POST"])(guard(edit)),
                name=f"{key}_edit",
            )
        )
        if resource.can_delete:
            patterns.append(
                path(
                    f"{key}/<int:pk>/delete/",
                    require_http_methods(["GET", "POST"])(guard(delete)),
                    name=f"{key}_delete",
                )
            )
    return patterns
