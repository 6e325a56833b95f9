"""The admins' pages for departments, teams and users (members, leads, away status),
built on the settings area's generic pages (crm/core/crud.py), and the away switch a
user flips for themself."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from crm.accounts import access, admin_forms, services
from crm.accounts.models import Department, Team
from crm.accounts.roles import Role
from crm.core import crud, crud_views


def _team_members_set(by: Any, team: Team, data: dict[str, Any]) -> None:
    """The form's member list becomes the team's (users leaving get no team)."""
    chosen = [user.pk for user in data.get("members") or []]
    users = get_user_model().objects
    users.filter(team=team).exclude(pk__in=chosen).update(team=None)
    users.filter(pk__in=chosen).exclude(team=team).update(team=team)


def _role_labels(user: Any) -> str:
    names = {group.name for group in user.groups.all()}  # prefetched
    return "、".join(str(role.label) for role in Role if role.value in names)


DEPARTMENTS = crud.Resource(
    key="departments",
    model=Department,
    form=admin_forms.DepartmentForm,
    label=gettext_lazy("部门"),
    item_label=gettext_lazy("部门"),
    description=gettext_lazy("部门下有团队；经理看到本部门的客户，后台工单发给部门。"),
    queryset=lambda: Department.objects.annotate(
        team_count=Count("teams", distinct=True)
    ).order_by("name"),
    columns=(
        crud.Column(gettext_lazy("名称"), lambda d: d.name),
        crud.Column(gettext_lazy("团队数"), lambda d: d.team_count),
    ),
    search=("name",),
    delete_note=gettext_lazy("还有团队或后台工单的部门不能删除。"),
)

TEAMS = crud.Resource(
    key="teams",
    model=Team,
    form=admin_forms.TeamForm,
    label=gettext_lazy("团队"),
    item_label=gettext_lazy("团队"),
    description=gettext_lazy(
        "团队的成员和组长：新工单在团队内轮流分派（跳过暂离的人），超时先升级到组长。"
    ),
    queryset=lambda: (
        Team.objects.select_related("department", "lead")
        .annotate(member_count=Count("members", filter=Q(members__is_active=True)))
        .order_by("name")
    ),
    columns=(
        crud.Column(gettext_lazy("名称"), lambda t: t.name),
        crud.Column(gettext_lazy("部门"), lambda t: t.department),
        crud.Column(gettext_lazy("组长"), lambda t: t.lead),
        crud.Column(gettext_lazy("成员数"), lambda t: t.member_count),
    ),
    search=("name", "department__name"),
    filters=(
        crud.Filter(
            "department",
            gettext_lazy("部门"),
            lambda: [(str(d.pk), d.name) for d in Department.objects.order_by("name")],
            lambda value: Q(department_id=value),
        ),
    ),
    after_save=_team_members_set,
    delete_note=gettext_lazy("成员会变为无团队；仍有工单的团队会从工单上移除。"),
)

USERS = crud.Resource(
    key="users",
    model=get_user_model(),
    form=admin_forms.UserSettingsForm,
    label=gettext_lazy("用户与暂离"),
    item_label=gettext_lazy("用户"),
    description=gettext_lazy(
        "暂离的人（休假、外出）不参与新工单的轮流分派，回来后取消暂离即可。"
        "账号、角色和密码仍在系统管理中维护。"
    ),
    queryset=lambda: (
        get_user_model()
        .objects.filter(is_active=True)
        .select_related("team")
        .prefetch_related(Prefetch("groups"))
        .order_by("username")
    ),
    columns=(
        crud.Column(gettext_lazy("用户名"), lambda u: u.username),
        crud.Column(gettext_lazy("姓名"), lambda u: u.display_name),
        crud.Column(gettext_lazy("角色"), _role_labels),
        crud.Column(gettext_lazy("团队"), lambda u: u.team),
        crud.Column(gettext_lazy("暂离"), lambda u: u.is_away),
    ),
    search=("username", "display_name"),
    search_hint=gettext_lazy("用户名或姓名"),
    filters=(
        crud.Filter(
            "team",
            gettext_lazy("团队"),
            lambda: [(str(t.pk), t.name) for t in Team.objects.order_by("name")],
            lambda value: Q(team_id=value),
        ),
        crud.Filter(
            "away",
            gettext_lazy("暂离"),
            lambda: [("1", _("暂离")), ("0", _("在岗"))],
            lambda value: Q(is_away=value == "1"),
        ),
    ),
    can_create=False,
    can_delete=False,
    list_template="accounts/settings/user_list.html",
)

RESOURCES = [DEPARTMENTS, TEAMS, USERS]


def _back(request: HttpRequest, default: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(default)


@require_http_methods(["POST"])
@access.role_required(Role.ADMIN)
def user_away(request: HttpRequest, pk: int) -> HttpResponse:
    """Flip one user's away status from the list."""
    user = access.get_object_for(get_user_model().objects.filter(is_active=True), pk)
    is_away = request.POST.get("is_away") == "1"
    services.user_away_set(by=request.user, user=user, is_away=is_away)
    text = _("%(name)s 已标为暂离。") if is_away else _("%(name)s 已回到岗位。")
    messages.success(request, text % {"name": user})
    return _back(request, "settings:users_list")


@require_http_methods(["POST"])
@login_required
def away_self(request: HttpRequest) -> HttpResponse:
    """The user's own switch (user menu): away, or back."""
    is_away = request.POST.get("is_away") == "1"
    services.user_away_set(by=request.user, user=request.user, is_away=is_away)
    if is_away:
        messages.success(request, _("已标为暂离：新工单不会轮流分派给您。"))
    else:
        messages.success(request, _("欢迎回来：新工单会再轮流分派给您。"))
    return _back(request, "home")


urlpatterns_resources = crud_views.resource_urls(RESOURCES)
