"""The desk's sections of the admins' settings area: the category tree (with teams),
SLA policies (with their calendar), the working calendar (hours, holidays and 调休),
canned replies and assets (with warranty reminders). Generic pages from
crm/core/crud_views.py; the writes go through crud.resource_save (audited)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Case, CharField, Q, Value, When
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.accounts.models import Team
from crm.core import crud
from customers.models import Customer
from service import admin_forms, routing, warranty
from service.models import (
    Asset,
    CalendarDay,
    CannedReply,
    Category,
    Priority,
    SLAPolicy,
    TicketType,
    WorkingPeriod,
)

WEEKDAY_NAMES = dict(admin_forms.WEEKDAYS)


def _teams() -> list[tuple[str, str]]:
    return [(str(t.pk), t.name) for t in Team.objects.order_by("name")]


def _prefix(field: str) -> Case:
    """`name > ` of an ancestor, or nothing when there is none (Concat reads NULL
    as an empty string, so the separator must be left out explicitly)."""
    return Case(
        When(**{f"{field}__isnull": False}, then=Concat(field, Value(" > "))),
        default=Value(""),
        output_field=CharField(),
    )


def _category_team(category: Category) -> Any:
    if category.team_id:
        return category.team
    inherited = routing.category_team(category)
    if inherited is None:
        return ""
    return _("沿用上级：%(team)s") % {"team": inherited}


CATEGORIES = crud.Resource(
    key="categories",
    model=Category,
    form=admin_forms.CategoryForm,
    label=_("工单分类"),
    item_label=_("分类"),
    description=_(
        "分类树决定新工单进入哪个团队的队列（维修 > 水电 > 漏水）；"
        "没有团队的子分类沿用上级分类的团队。"
    ),
    queryset=lambda: (
        Category.objects.select_related(
            "parent__parent__parent__team",
            "parent__parent__team",
            "parent__team",
            "team",
        )
        .annotate(
            # Tree order: 报修, 报修 > 电梯, 投诉 ...
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
        crud.Column(_("分类"), str),
        crud.Column(_("负责团队"), _category_team),
    ),
    search=("name", "parent__name"),
    filters=(crud.Filter("team", _("负责团队"), _teams, lambda v: Q(team_id=v)),),
    delete_note=_("有下级分类或已有工单的分类不能删除。"),
)

SLA_POLICIES = crud.Resource(
    key="sla",
    model=SLAPolicy,
    form=admin_forms.SLAPolicyForm,
    label=_("SLA 策略"),
    item_label=_("SLA 策略"),
    description=_(
        "每种工单类型和优先级的服务时限，按所选日历计时：工作时间，或全天候 24×7"
        "（如电梯困人）。修改只影响之后新建或改了类型、优先级的工单。"
    ),
    queryset=lambda: SLAPolicy.objects.order_by(
        "ticket_type", "priority", "for_key_accounts"
    ),
    columns=(
        crud.Column(_("名称"), lambda p: p.name),
        crud.Column(_("工单类型"), lambda p: p.get_ticket_type_display()),
        crud.Column(_("优先级"), lambda p: p.get_priority_display()),
        crud.Column(_("仅重点客户"), lambda p: p.for_key_accounts),
        crud.Column(_("计时日历"), lambda p: p.get_calendar_display()),
        crud.Column(_("首次响应（分钟）"), lambda p: p.first_response_minutes),
        crud.Column(_("解决（分钟）"), lambda p: p.resolution_minutes),
    ),
    search=("name",),
    filters=(
        crud.Filter(
            "ticket_type",
            _("工单类型"),
            lambda: list(TicketType.choices),
            lambda v: Q(ticket_type=v),
        ),
        crud.Filter(
            "priority",
            _("优先级"),
            lambda: list(Priority.choices),
            lambda v: Q(priority=v),
        ),
        crud.Filter(
            "calendar",
            _("计时日历"),
            lambda: list(SLAPolicy.Calendar.choices),
            lambda v: Q(calendar=v),
        ),
    ),
    delete_note=_("使用这条策略的工单保留已算好的截止时间，之后不再按策略计时。"),
)

WORKING_PERIODS = crud.Resource(
    key="hours",
    model=WorkingPeriod,
    form=admin_forms.WorkingPeriodForm,
    label=_("工作时段"),
    item_label=_("工作时段"),
    description=_(
        "普通工作日的上班时间，按星期设置，可以有午休（两段）。"
        "调休上班的周末按星期一的时段计算。"
    ),
    columns=(
        crud.Column(_("星期"), lambda p: WEEKDAY_NAMES.get(p.weekday, p.weekday)),
        crud.Column(_("开始"), lambda p: p.start.strftime("%H:%M")),
        crud.Column(_("结束"), lambda p: p.end.strftime("%H:%M")),
    ),
    queryset=lambda: WorkingPeriod.objects.order_by("weekday", "start"),
)


def _calendar_years() -> list[tuple[str, str]]:
    return [
        (str(day.year), str(day.year))
        for day in CalendarDay.objects.dates("date", "year", order="DESC")
    ]


CALENDAR_DAYS = crud.Resource(
    key="holidays",
    model=CalendarDay,
    form=admin_forms.CalendarDayForm,
    label=_("节假日与调休"),
    item_label=_("日期设置"),
    description=_(
        "与星期几不同的日子：法定节假日（休息）和调休上班的周末。"
        "官方安排可用命令导入：manage.py seed_calendar --year 2027。"
    ),
    columns=(
        crud.Column(_("日期"), lambda d: d.date.isoformat()),
        crud.Column(_("星期"), lambda d: WEEKDAY_NAMES[d.date.weekday()]),
        crud.Column(
            _("这一天"), lambda d: _("上班（调休）") if d.is_working else _("休息")
        ),
        crud.Column(_("说明"), lambda d: d.note),
    ),
    queryset=lambda: CalendarDay.objects.order_by("-date"),
    search=("note",),
    search_hint=_("说明，例如 春节"),
    filters=(
        crud.Filter("year", _("年份"), _calendar_years, lambda v: Q(date__year=int(v))),
        crud.Filter(
            "working",
            _("这一天"),
            lambda: [("0", _("休息")), ("1", _("上班（调休）"))],
            lambda v: Q(is_working=v == "1"),
        ),
    ),
    per_page=50,
)

CANNED_REPLIES = crud.Resource(
    key="canned",
    model=CannedReply,
    form=admin_forms.CannedReplyForm,
    label=_("常用回复"),
    item_label=_("常用回复"),
    description=_("客服回复客户时可选用的模板。"),
    columns=(
        crud.Column(_("标题"), lambda r: r.title),
        crud.Column(_("内容"), lambda r: r.body[:80]),
    ),
    search=("title", "body"),
)


def _warranty(value: str) -> Q:
    today = timezone.localdate()
    soon = today + timedelta(days=warranty.DAYS_BEFORE)
    return {
        "soon": Q(warranty_until__gte=today, warranty_until__lte=soon),
        "in": Q(warranty_until__gte=today),
        "expired": Q(warranty_until__lt=today),
        "none": Q(warranty_until__isnull=True),
    }[value]


def _asset_saved(by: Any, asset: Asset, data: dict[str, Any]) -> None:
    warranty.reminder_schedule(asset)


ASSETS = crud.Resource(
    key="assets",
    model=Asset,
    form=admin_forms.AssetSettingsForm,
    label=_("客户资产"),
    item_label=_("资产"),
    description=_(
        "房屋单元、设备、设施和合同。保修截止前 30 天，系统提醒客户的负责销售和服务台组长。"
        "新资产在客户页面添加。"
    ),
    queryset=lambda: Asset.objects.select_related("customer", "dealer").order_by("-id"),
    columns=(
        crud.Column(_("名称"), lambda a: a.name),
        crud.Column(_("类型"), lambda a: a.get_kind_display()),
        crud.Column(_("客户"), lambda a: a.customer.name),
        crud.Column(_("编号"), lambda a: a.serial),
        crud.Column(_("保修截止"), lambda a: a.warranty_until),
        crud.Column(_("经销商/分销商"), lambda a: a.dealer.name if a.dealer else ""),
    ),
    search=("name", "serial"),
    search_hint=_("名称或编号"),
    filters=(
        crud.Filter(
            "kind", _("类型"), lambda: list(Asset.Kind.choices), lambda v: Q(kind=v)
        ),
        crud.Filter(
            "warranty",
            _("保修"),
            lambda: [
                ("soon", _("30 天内到期")),
                ("in", _("在保")),
                ("expired", _("已过保")),
                ("none", _("未填写")),
            ],
            _warranty,
        ),
    ),
    form_kwargs=lambda: {
        "dealers": Customer.objects.filter(
            kind__in=["dealer", "distributor", "agent", "wholesaler"]
        ).order_by("name")
    },
    after_save=_asset_saved,
    can_create=False,
    can_delete=False,
)

RESOURCES = [
    CATEGORIES,
    SLA_POLICIES,
    WORKING_PERIODS,
    CALENDAR_DAYS,
    CANNED_REPLIES,
    ASSETS,
]

SECTIONS = [
    (CATEGORIES, "diagram-2", _("分类树与负责团队。")),
    (SLA_POLICIES, "stopwatch", _("服务时限，工作时间或全天候 24×7。")),
    (WORKING_PERIODS, "clock", _("每周的上班时间。")),
    (CALENDAR_DAYS, "calendar-event", _("法定节假日与调休上班日。")),
    (CANNED_REPLIES, "chat-left-text", _("回复客户的模板。")),
    (ASSETS, "box-seam", _("资产清单、保修与提醒。")),
]


def register_sections() -> None:
    for order, (resource, icon, description) in enumerate(SECTIONS):
        crud.register(
            crud.Section(
                resource.label,
                f"service_admin:{resource.key}_list",
                description,
                icon,
                order=10 + order,
            )
        )
