from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from crm.accounts import services
from crm.accounts.models import Department, Team, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "display_name", "team", "is_active", "last_login")
    list_filter = ("groups", "team", "is_active")
    list_select_related = ("team",)
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        (_("Kehu"), {"fields": ("display_name", "phone", "team")}),
    )
    actions = ["end_all_sessions"]

    @admin.action(description=_("结束所选用户的全部登录会话"), permissions=["change"])
    def end_all_sessions(self, request: HttpRequest, queryset: QuerySet) -> None:
        ended = 0
        for user in queryset:
            # An administrator ending their own sessions keeps the one in use.
            keep = request.session.session_key if user.pk == request.user.pk else None
            ended += services.user_sessions_end(
                by=request.user, user=user, keep_session_key=keep
            )
        self.message_user(
            request,
            ngettext(
                "已结束 %(count)d 个登录会话。", "已结束 %(count)d 个登录会话。", ended
            )
            % {"count": ended},
        )


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "department", "lead")
    list_select_related = ("department", "lead")


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("name",)
