from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.core import bounds
from culture.segments import forms, rules, selectors, services
from culture.segments.access import get_segment_for
from culture.segments.models import Segment
from customers import permissions
from customers import selectors as customer_selectors
from customers.models import Customer

USER_ROLES = services.USER_ROLES


def _builder_context(request: HttpRequest, draft: dict) -> dict[str, Any]:
    return {
        "draft": forms.rendered(draft),
        "field_options": forms.field_options(),
        "people": list(customer_selectors.owner_choices(user=request.user)),
        "teams": list(customer_selectors.team_choices(user=request.user)),
        "events": _events(),
    }


def _events() -> list[Any]:
    from service.handover.models import HandoverEvent

    return list(HandoverEvent.objects.order_by("-start_date", "-id")[:50])


def _count_context(request: HttpRequest, draft: dict) -> dict[str, Any]:
    try:
        tree = rules.validate(forms.tree_of(draft))
    except ValidationError as error:
        return {"count_error": " ".join(error.messages)}
    return {
        "count": selectors.live_count(user=request.user, tree=tree),
        "definition": rules.describe(tree),
    }


@require_http_methods(["GET"])
@access.role_required(*USER_ROLES)
def segment_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "segments/segment_list.html",
        {"segments": list(selectors.segment_list(user=request.user)[:200])},
    )


def _form_page(
    request: HttpRequest, *, segment: Segment | None, kind: str
) -> HttpResponse:
    can_share = request.user.role in services.SHARING_ROLES
    initial = (
        {
            "name": segment.name,
            "description": segment.description,
            "visibility": segment.visibility,
        }
        if segment
        else {}
    )
    if request.method == "POST":
        form = forms.SegmentForm(request.POST, can_share=can_share)
        draft = forms.draft_from_post(request.POST)
    else:
        form = forms.SegmentForm(initial=initial, can_share=can_share)
        draft = forms.draft_from_tree(segment.rules if segment else {})
    status = 200
    if request.method == "POST" and form.is_valid():
        data = {**form.cleaned_data, "kind": kind}
        if kind == Segment.Kind.DYNAMIC:
            data["rules"] = forms.tree_of(draft)
        try:
            if segment is None:
                segment = services.segment_create(by=request.user, data=data)
            else:
                version = bounds.Params(request.POST).integer(
                    "version", min_value=1, max_value=bounds.INT_MAX, default=0
                )
                segment = services.segment_update(
                    by=request.user, segment=segment, data=data, version=version
                )
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, error.messages)
            status = 400
        else:
            messages.success(
                request,
                _("分群已保存，成员正在计算。")
                if segment.is_dynamic
                else _("名单已保存。"),
            )
            return redirect(segment)
    elif request.method == "POST":
        status = 400
    context = {
        "form": form,
        "segment": segment,
        "kind": kind,
        "is_dynamic": kind == Segment.Kind.DYNAMIC,
        **_builder_context(request, draft),
        **(_count_context(request, draft) if kind == Segment.Kind.DYNAMIC else {}),
    }
    return render(request, "segments/segment_form.html", context, status=status)


@require_http_methods(["GET", "POST"])
@access.role_required(*USER_ROLES)
def segment_create(request: HttpRequest) -> HttpResponse:
    kind = bounds.params(request).choice(
        "kind", Segment.Kind.values, default=Segment.Kind.DYNAMIC
    )
    return _form_page(request, segment=None, kind=kind)


@require_http_methods(["GET", "POST"])
@access.role_required(*USER_ROLES)
def segment_edit(request: HttpRequest, pk: int) -> HttpResponse:
    segment = get_segment_for(request.user, pk, write=True)
    return _form_page(request, segment=segment, kind=segment.kind)


@require_http_methods(["POST"])
@access.role_required(*USER_ROLES)
def segment_builder(request: HttpRequest) -> HttpResponse:
    """Re-render the rule builder after a button or a field change (htmx), with the
    count alongside (out of band)."""
    draft = forms.draft_from_post(request.POST)
    action = str(request.POST.get("action", ""))[:40]
    if action:
        draft = forms.apply_action(draft, action)
    context = {
        **_builder_context(request, draft),
        **_count_context(request, draft),
        "oob": True,
    }
    return render(request, "segments/_builder.html", context)


@require_http_methods(["POST"])
@access.role_required(*USER_ROLES)
def segment_count(request: HttpRequest) -> HttpResponse:
    """The live count of a draft: customers the user may see that match it."""
    draft = forms.draft_from_post(request.POST)
    return render(request, "segments/_count.html", _count_context(request, draft))


@require_http_methods(["GET"])
@access.role_required(*USER_ROLES)
def segment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    segment = get_segment_for(request.user, pk)
    after = bounds.params(request).integer(
        "after", min_value=1, max_value=bounds.ID_MAX, default=None
    )
    members = selectors.members_page(user=request.user, segment=segment, after=after)
    if request.htmx and after:
        return render(
            request,
            "segments/_members.html",
            {
                "segment": segment,
                "members": members,
                "can_edit": services.can_edit(request.user, segment),
            },
        )
    can_edit = services.can_edit(request.user, segment)
    context = {
        "segment": segment,
        "definition": rules.describe(segment.rules) if segment.rules else "",
        "members": members,
        "visible_count": selectors.visible_member_count(
            user=request.user, segment=segment
        ),
        "history": selectors.history(user=request.user, segment=segment),
        "can_edit": can_edit,
        "can_bulk": services.can_bulk(request.user),
        "can_export": permissions.may(request.user, "customers.export_customer"),
        "export_url": export_url(segment),
        "search_form": forms.StaticSearchForm(),
    }
    return render(request, "segments/segment_detail.html", context)


@require_http_methods(["POST"])
@access.role_required(*USER_ROLES)
def segment_delete(request: HttpRequest, pk: int) -> HttpResponse:
    segment = get_segment_for(request.user, pk, write=True)
    services.segment_delete(by=request.user, segment=segment)
    messages.success(request, _("分群已删除。"))
    return redirect("segments:segment_list")


@require_http_methods(["POST"])
@access.role_required(*USER_ROLES)
def segment_refresh(request: HttpRequest, pk: int) -> HttpResponse:
    segment = get_segment_for(request.user, pk, write=True)
    entered, left = services.segment_refresh(
        segment_id=segment.pk, reason="manual_refresh"
    )
    messages.success(
        request,
        _("已重新计算：%(entered)s 位进入，%(left)s 位离开。")
        % {"entered": entered, "left": left},
    )
    return redirect(segment)


# --- static lists -----------------------------------------------------------------------


@require_http_methods(["POST"])
@access.role_required(*USER_ROLES)
def static_search(request: HttpRequest, pk: int) -> HttpResponse:
    """Search (POST: a phone never lands in an address) for customers to add."""
    segment = get_segment_for(request.user, pk, write=True)
    form = forms.StaticSearchForm(request.POST)
    results: list[Customer] = []
    total = 0
    if form.is_valid():
        found = selectors.search_customers(
            user=request.user, query=form.cleaned_data["q"]
        )
        results = list(found.order_by("name", "id")[:20])
        total = found.order_by()[: services.STATIC_ADD_MAX + 1].count()
        members = selectors.is_member_ids(segment=segment, ids=[c.pk for c in results])
        for customer in results:
            customer.is_member = customer.pk in members
    return render(
        request,
        "segments/_static_results.html",
        {
            "segment": segment,
            "search_form": form,
            "results": results,
            "total": total,
            "add_max": services.STATIC_ADD_MAX,
        },
        status=200 if form.is_valid() else 400,
    )


@require_http_methods(["POST"])
@access.role_required(*USER_ROLES)
def static_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add ticked customers, or every result of the search (`all`)."""
    segment = get_segment_for(request.user, pk, write=True)
    visible = Customer.objects.visible_to(request.user).filter(merged_into__isnull=True)
    if request.POST.get("all") == "1":
        form = forms.StaticSearchForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("请输入搜索内容。"))
            return redirect(segment)
        customers = selectors.search_customers(
            user=request.user, query=form.cleaned_data["q"]
        )
    else:
        ids = [bounds.as_id(v) for v in request.POST.getlist("customer")[:500]]
        customers = visible.filter(pk__in=[i for i in ids if i])
    try:
        added = services.static_members_add(
            by=request.user, segment=segment, customers=customers
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(segment)
    messages.success(request, _("已添加 %(n)s 位客户。") % {"n": added})
    return redirect(segment)


@require_http_methods(["POST"])
@access.role_required(*USER_ROLES)
def static_remove(request: HttpRequest, pk: int) -> HttpResponse:
    segment = get_segment_for(request.user, pk, write=True)
    ids = [bounds.as_id(v) for v in request.POST.getlist("customer")[:500]]
    try:
        removed = services.static_members_remove(
            by=request.user, segment=segment, customer_ids=[i for i in ids if i]
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(segment)
    messages.success(request, _("已移出 %(n)s 位客户。") % {"n": removed})
    return redirect(segment)


# --- bulk actions -----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@access.role_required(*USER_ROLES)
def segment_followups(request: HttpRequest, pk: int) -> HttpResponse:
    segment = get_segment_for(request.user, pk)
    if not request.user.has_perm("customers.add_followup"):
        raise PermissionDenied
    people = list(customer_selectors.owner_choices(user=request.user))
    form = forms.FollowUpBulkForm(request.POST or None, people=people)
    count = selectors.visible_member_count(user=request.user, segment=segment)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            assignee = next(
                (p for p in people if p.pk == form.cleaned_data["assignee"]), None
            )
            try:
                created, is_deferred = services.segment_followups_create(
                    by=request.user,
                    segment=segment,
                    note=form.cleaned_data["note"],
                    due_at=form.cleaned_data["due_at"],
                    assignee=assignee,
                )
            except ValidationError as error:
                _add_errors(form, error)
            else:
                message = (
                    _("已安排为 %(n)s 位客户创建跟进，将在后台完成。")
                    if is_deferred
                    else _("已创建 %(n)s 条跟进。")
                )
                messages.success(request, message % {"n": created})
                return redirect(segment)
    context = {
        "segment": segment,
        "form": form,
        "count": count,
        "limit": services.BULK_MAX,
    }
    return render(request, "segments/segment_followups.html", context, status=status)


@require_http_methods(["GET", "POST"])
@access.role_required(*services.SHARING_ROLES)
def segment_reassign(request: HttpRequest, pk: int) -> HttpResponse:
    segment = get_segment_for(request.user, pk)
    if not services.can_bulk(request.user):
        raise PermissionDenied
    people = [
        p
        for p in customer_selectors.owner_choices(user=request.user)
        if p.role in ("sales", "manager")
    ]
    form = forms.ReassignBulkForm(request.POST or None, people=people)
    count = selectors.visible_member_count(user=request.user, segment=segment)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            new_owner = next(
                p for p in people if p.pk == form.cleaned_data["new_owner"]
            )
            try:
                moved = services.segment_reassign(
                    by=request.user, segment=segment, new_owner=new_owner
                )
            except ValidationError as error:
                _add_errors(form, error)
            else:
                messages.success(request, _("已转移 %(n)s 位客户。") % {"n": moved})
                return redirect(segment)
    context = {
        "segment": segment,
        "form": form,
        "count": count,
        "limit": services.BULK_MAX,
    }
    return render(request, "segments/segment_reassign.html", context, status=status)


def _add_errors(form: Any, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


def export_url(segment: Segment) -> str:
    return f"{reverse('customers:export_confirm')}?segment={segment.pk}"
