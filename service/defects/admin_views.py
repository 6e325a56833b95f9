"""The defects' sections of the admins' settings area: contractors (责任单位) and the
three-level category tree with default severities (crm/core/crud.py)."""

from __future__ import annotations

from django.db.models import CharField, Q
from django.db.models.functions import Concat
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from crm.core import crud
from service.admin_views import _prefix
from service.defects import forms
from service.defects.models import Contractor, DefectCategory, Severity


def _contractor_page(contractor: Contractor) -> str:
    return format_html(
        '<a href="{}">{}</a>',
        reverse("defects:contractor_detail", args=[contractor.pk]),
        _("待整改清单与链接"),
    )


CONTRACTORS = crud.Resource(
    key="contractors",
    model=Contractor,
    form=forms.ContractorForm,
    label=_("责任单位"),
    item_label=_("责任单位"),
    description=_(
        "负责整改问题的施工单位或供应商；对接人在其问题超期时收到提醒。"
        "在单位的清单页可生成免登录的整改链接。"
    ),
    queryset=lambda: Contractor.objects.select_related("staff").order_by("name"),
    columns=(
        crud.Column(_("单位名称"), lambda c: c.name),
        crud.Column(_("联系人"), lambda c: c.contact_name),
        crud.Column(_("对接人"), lambda c: c.staff or ""),
        crud.Column(_("启用"), lambda c: c.active),
        crud.Column(_("清单"), _contractor_page),
    ),
    search=("name", "contact_name"),
    delete_note=_("已有问题的责任单位不能删除，可以停用。"),
    delete_blocker=lambda c: (
        _("该单位已有问题记录，请改为停用。") if c.defects.exists() else None
    ),
)

CATEGORIES = crud.Resource(
    key="categories",
    model=DefectCategory,
    form=forms.CategoryForm,
    label=_("问题分类"),
    item_label=_("问题分类"),
    description=_(
        "三级分类：专业（土建、门窗、水电…）> 部位 > 问题，问题的默认严重程度决定整改时限。"
    ),
    queryset=lambda: (
        DefectCategory.objects.select_related("parent__parent")
        .annotate(
            path=Concat(
                _prefix("parent__parent__name"),
                _prefix("parent__name"),
                "name",
                output_field=CharField(),
            )
        )
        .order_by("path", "id")
    ),
    columns=(
        crud.Column(_("分类"), lambda c: c.path),
        crud.Column(_("层级"), lambda c: c.level),
        crud.Column(
            _("默认严重程度"),
            lambda c: c.get_default_severity_display() if c.level == 3 else "",
        ),
    ),
    search=("name", "parent__name"),
    filters=(
        crud.Filter(
            "level",
            _("层级"),
            lambda: [("1", _("专业")), ("2", _("部位")), ("3", _("问题"))],
            lambda v: Q(level=v),
        ),
        crud.Filter(
            "severity",
            _("默认严重程度"),
            lambda: list(Severity.choices),
            lambda v: Q(default_severity=v, level=3),
        ),
    ),
    delete_note=_("有下级分类或已有问题的分类不能删除。"),
    delete_blocker=lambda c: (
        _("该分类有下级分类或已有问题记录。")
        if c.children.exists() or c.defects.exists()
        else None
    ),
)

RESOURCES = [CONTRACTORS, CATEGORIES]
SECTIONS = [
    (CONTRACTORS, "building-gear", _("整改责任单位与对接人。")),
    (CATEGORIES, "diagram-3", _("问题分类树与默认严重程度。")),
]


def register_sections() -> None:
    for order, (resource, icon, description) in enumerate(SECTIONS):
        crud.register(
            crud.Section(
                resource.label,
                f"defects_admin:{resource.key}_list",
                description,
                icon,
                order=60 + order,
            )
        )
