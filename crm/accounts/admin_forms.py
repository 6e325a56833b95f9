"""Forms of the admins' settings pages for departments, teams and users."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from crm.accounts.models import Department, Team
from crm.core import bounds
from crm.core.crud import ResourceForm


def staff() -> Any:
    return get_user_model().objects.filter(is_active=True).order_by("username")


def _person(user: Any) -> str:
    return f"{user}（{user.username}）"


class DepartmentForm(ResourceForm):
    class Meta:
        model = Department
        formfield_callback = bounds.formfield
        fields = ["name"]


class TeamForm(ResourceForm):
    members = forms.ModelMultipleChoiceField(
        label=_("成员"),
        queryset=get_user_model().objects.none(),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 8}),
        help_text=_("选中的人属于本团队；取消选中的人离开本团队。"),
    )

    class Meta:
        model = Team
        formfield_callback = bounds.formfield
        fields = ["name", "department", "lead"]
        help_texts = {"lead": _("工单超时先升级到组长；组长可以不在本团队。")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["lead"].queryset = staff()
        self.fields["members"].queryset = staff()
        # Two people may share a name: the username tells them apart.
        for name in ("lead", "members"):
            self.fields[name].label_from_instance = _person
        if self.instance.pk:
            self.fields["members"].initial = list(
                self.instance.members.values_list("pk", flat=True)
            )


class UserSettingsForm(ResourceForm):
    class Meta:
        model = get_user_model()
        formfield_callback = bounds.formfield
        fields = ["display_name", "team", "is_away"]
        help_texts = {"is_away": _("暂离的人不参与新工单的轮流分派。")}
