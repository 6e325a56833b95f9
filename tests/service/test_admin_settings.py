"""The desk's settings pages (/settings/desk/): admins keep categories, SLA policies,
the working calendar, canned replies and assets in Kehu, with validation, audit and a
confirmation before deleting; warranty reminders go through the pipeline."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from crm.accounts.roles import Role
from crm.core.models import AccessLog
from crm.notifications.models import Notification
from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction
from service import calendar_data, services, warranty
from service.models import (
    CalendarDay,
    CannedReply,
    Category,
    SLAPolicy,
    WorkingPeriod,
)
from tests.factories import (
    AssetFactory,
    CategoryFactory,
    CustomerFactory,
    SLAPolicyFactory,
    TeamFactory,
    UserFactory,
)

SH = ZoneInfo("Asia/Shanghai")


def url(name: str, *args: Any) -> str:
    return reverse(f"service_admin:{name}", args=args)


@pytest.fixture
def admin(admin_user: Any, client: Any) -> Any:
    client.force_login(admin_user)
    return client


def audit_details(action: str = "settings_changed") -> list[str]:
    return list(
        AccessLog.objects.filter(action=action)
        .order_by("pk")
        .values_list("detail", flat=True)
    )


SLA_FORM = {
    "name": "报修·紧急",
    "ticket_type": "repair",
    "priority": "urgent",
    "calendar": "24x7",
    "first_response_minutes": "15",
    "resolution_minutes": "240",
    "warn_before_minutes": "5",
}


def test_an_admin_adds_a_24x7_policy_and_new_tickets_count_round_the_clock(
    admin: Any, admin_user: Any
) -> None:
    response = admin.post(url("sla_create"), SLA_FORM)
    assert response.status_code == 302
    policy = SLAPolicy.objects.get()
    assert policy.is_round_the_clock
    assert audit_details() == [
        "created 报修·紧急: name,ticket_type,priority,for_key_accounts,calendar,"
        "first_response_minutes,resolution_minutes,warn_before_minutes"
    ]
    listing = admin.get(url("sla_list"))
    assertContains(listing, "全天候 24×7")
    sunday_night = datetime(2026, 3, 8, 22, tzinfo=SH)
    ticket = services.ticket_create(
        by=admin_user,
        customer=CustomerFactory(),
        ticket_type="repair",
        channel="hotline",
        priority="urgent",
        subject="电梯困人",
        description="有人被困。",
        now=sunday_night,
    )
    assert ticket.first_response_due_at == sunday_night + timedelta(minutes=15)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"warn_before_minutes": "15"}, "warn_before_minutes", "提前预警必须短于"),
        ({"first_response_minutes": "500"}, "first_response_minutes", "不能长于"),
        ({"first_response_minutes": "0"}, "first_response_minutes", "大于或等于1"),
        ({"resolution_minutes": "99999999999"}, "resolution_minutes", ""),
        ({"calendar": "moon"}, "calendar", "选择一个有效的选项"),
        ({"name": ""}, "name", "这个字段是必填项"),
    ],
)
def test_a_bad_policy_is_shown_again_with_its_error_and_nothing_saved(
    admin: Any, change: dict, field: str, message: str
) -> None:
    response = admin.post(url("sla_create"), SLA_FORM | change)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assertContains(response, message, status_code=400)
    assert not SLAPolicy.objects.exists()
    assert audit_details() == []


def test_a_duplicate_policy_is_a_form_error(admin: Any) -> None:
    SLAPolicyFactory(ticket_type="repair", priority="urgent")
    response = admin.post(url("sla_create"), SLA_FORM)
    assert response.status_code == 400
    assert SLAPolicy.objects.count() == 1


def test_the_category_tree_refuses_a_cycle_and_routes_new_tickets(
    admin: Any, admin_user: Any
) -> None:
    desk = TeamFactory(name="维修组")
    repair = CategoryFactory(name="维修")
    leak = CategoryFactory(name="漏水", parent=repair)
    response = admin.post(
        url("categories_edit", repair.pk), {"name": "维修", "parent": leak.pk}
    )
    assert response.status_code == 400
    assertContains(response, "不能是它自己或它的下级分类", status_code=400)
    response = admin.post(
        url("categories_edit", repair.pk), {"name": "维修", "team": desk.pk}
    )
    assert response.status_code == 302
    ticket = services.ticket_create(
        by=admin_user,
        customer=CustomerFactory(),
        ticket_type="repair",
        channel="hotline",
        subject="楼上漏水",
        description="天花板滴水。",
        category=leak,
    )
    assert ticket.team == desk  # the subcategory takes its parent's team


def test_deleting_asks_first_and_a_category_in_use_is_kept(
    admin: Any, admin_user: Any
) -> None:
    used = CategoryFactory(name="投诉")
    services.ticket_create(
        by=admin_user,
        customer=CustomerFactory(),
        ticket_type="complaint",
        channel="hotline",
        subject="噪音",
        description="楼下施工。",
        category=used,
    )
    unused = CategoryFactory(name="建议")

    confirm = admin.get(url("categories_delete", unused.pk))
    assertContains(confirm, "删除分类“建议”？")
    assert Category.objects.filter(pk=unused.pk).exists()  # a GET deletes nothing
    assert admin.post(url("categories_delete", unused.pk)).status_code == 302
    assert not Category.objects.filter(pk=unused.pk).exists()
    assert audit_details() == ["deleted 建议"]

    refused = admin.post(url("categories_delete", used.pk))
    assert refused.status_code == 409
    assertContains(refused, "仍有记录在使用它", status_code=409)
    assert Category.objects.filter(pk=used.pk).exists()


def test_a_holiday_added_by_the_admin_moves_business_deadlines(
    admin: Any, admin_user: Any
) -> None:
    calendar_data.calendar_seed(years=[2026])
    SLAPolicyFactory(ticket_type="complaint", priority="normal")  # 60 minutes
    response = admin.post(
        url("holidays_create"),
        {"date": "2026-03-09", "is_working": "0", "note": "公司年会"},
    )
    assert response.status_code == 302
    assert CalendarDay.objects.get(date=date(2026, 3, 9)).note == "公司年会"
    friday_evening = datetime(2026, 3, 6, 17, 30, tzinfo=SH)
    ticket = services.ticket_create(
        by=admin_user,
        customer=CustomerFactory(),
        ticket_type="complaint",
        channel="hotline",
        subject="投诉",
        description="……",
        now=friday_evening,
    )
    # 30 minutes on Friday, Monday is the new holiday: 30 more on Tuesday.
    assert ticket.first_response_due_at == datetime(2026, 3, 10, 9, 30, tzinfo=SH)

    again = admin.post(
        url("holidays_create"), {"date": "2026-03-09", "is_working": "1", "note": ""}
    )
    assert again.status_code == 400
    assertContains(again, "这一天已经有设置", status_code=400)
    out_of_range = admin.post(
        url("holidays_create"), {"date": "0001-01-01", "is_working": "0"}
    )
    assert out_of_range.status_code == 400


def test_working_periods_may_not_overlap_or_end_before_they_start(admin: Any) -> None:
    WorkingPeriod.objects.create(weekday=0, start=time(9), end=time(12))
    overlap = admin.post(
        url("hours_create"), {"weekday": "0", "start": "11:00", "end": "13:00"}
    )
    assertContains(overlap, "重叠", status_code=400)
    backwards = admin.post(
        url("hours_create"), {"weekday": "1", "start": "18:00", "end": "09:00"}
    )
    assertContains(backwards, "结束时间必须晚于开始时间", status_code=400)
    ok = admin.post(
        url("hours_create"), {"weekday": "0", "start": "13:30", "end": "18:00"}
    )
    assert ok.status_code == 302
    assert WorkingPeriod.objects.filter(weekday=0).count() == 2


def test_lists_search_and_cost_the_same_queries_at_any_size(admin: Any) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = admin.get(url("canned_list"), {"q": "回复"})
        assert response.status_code == 200
        return len(captured)

    CannedReply.objects.create(title="回复模板0", body="您好")
    few = queries()
    CannedReply.objects.bulk_create(
        CannedReply(title=f"回复模板{n}", body="您好") for n in range(1, 60)
    )
    CannedReply.objects.create(title="致歉", body="抱歉")
    assert queries() == few
    page = admin.get(url("canned_list"), {"q": "回复"})
    assertContains(page, "共 60 条")
    assertNotContains(page, "致歉")
    assertContains(admin.get(url("canned_list"), {"page": "3"}), "第 3 页")


def test_asset_list_filters_by_warranty_and_searches_serials(admin: Any) -> None:
    with time_machine.travel(datetime(2026, 3, 2, 10, tzinfo=SH), tick=False):
        AssetFactory(name="中央空调", serial="AC-778", warranty_until=date(2026, 3, 20))
        AssetFactory(name="电梯", serial="EL-1", warranty_until=date(2030, 1, 1))
        AssetFactory(name="热水器", serial="WH-9", warranty_until=date(2025, 1, 1))
        soon = admin.get(url("assets_list"), {"warranty": "soon"})
        found = admin.get(url("assets_list"), {"q": "ac-77"})
        bad = admin.get(url("assets_list"), {"warranty": "forever"})
    assert [r["object"].name for r in soon.context["page"].object_list] == ["中央空调"]
    assert [r["object"].name for r in found.context["page"].object_list] == ["中央空调"]
    # An unknown filter value (an old bookmark) is ignored, never a 500.
    assert bad.status_code == 200
    assert len(bad.context["page"].object_list) == 3


@pytest.fixture
def desk_lead(db: None) -> Any:
    desk = TeamFactory(name="客服组")
    lead = UserFactory(username="desk_lead", team=desk, role=Role.SERVICE)
    desk.lead = lead
    desk.save()
    CategoryFactory(name="报修", team=desk)  # a desk team: some category routes to it
    return lead


def run(when: datetime) -> list[str]:
    with time_machine.travel(when, tick=False):
        ids = scheduler.actions_sweep(now=when)
        for action_id in ids:
            assert scheduler.action_deliver(action_id=action_id, now=when)
    return [ScheduledAction.objects.get(pk=i).idempotency_key for i in ids]


def test_warranty_reminders_reach_the_owner_and_the_desk_once_through_the_pipeline(
    admin: Any, desk_lead: Any
) -> None:
    owner = UserFactory(username="sales_owner", role=Role.SALES)
    customer = CustomerFactory(name="钱女士", owner=owner)
    with time_machine.travel(datetime(2026, 3, 2, 10, tzinfo=SH), tick=False):
        asset = AssetFactory(customer=customer, name="中央空调")
        response = admin.post(
            url("assets_edit", asset.pk),
            {"kind": "appliance", "name": "中央空调", "warranty_until": "2026-06-30"},
        )
        assert response.status_code == 302
        # Moved again: the first reminder is cancelled, one for the new date waits.
        admin.post(
            url("assets_edit", asset.pk),
            {"kind": "appliance", "name": "中央空调", "warranty_until": "2026-07-31"},
        )
    actions = ScheduledAction.objects.filter(kind=warranty.WARRANTY_REMINDER)
    assert sorted(actions.values_list("idempotency_key", "state")) == [
        (f"asset:{asset.pk}:warranty:2026-06-30", "cancelled"),
        (f"asset:{asset.pk}:warranty:2026-07-31", "pending"),
    ]
    due = datetime(2026, 7, 1, 9, tzinfo=SH)  # 30 days before, in the morning
    assert run(due - timedelta(minutes=1)) == []
    assert run(due) == [f"asset:{asset.pk}:warranty:2026-07-31"]
    assert run(due + timedelta(days=1)) == []
    title = "保修即将到期：中央空调（钱女士），2026-07-31 到期"
    for person in (owner, desk_lead):
        assert list(
            Notification.objects.filter(recipient=person).values_list(
                "title", flat=True
            )
        ) == [title]
    reasons = dict(
        Notification.objects.filter(title=title).values_list("recipient", "reason")
    )
    assert reasons == {owner.pk: "你是该客户的负责销售", desk_lead.pk: "你是服务台组长"}


def test_an_asset_created_at_the_desk_gets_its_reminder_and_backfill_is_idempotent(
    admin_user: Any, desk_lead: Any
) -> None:
    with time_machine.travel(datetime(2026, 3, 2, 10, tzinfo=SH), tick=False):
        asset = services.asset_create(
            by=admin_user,
            customer=CustomerFactory(),
            data={"name": "电梯", "warranty_until": date(2026, 3, 20)},
        )
        old = AssetFactory(name="旧资产", warranty_until=date(2027, 1, 1))
        expired = AssetFactory(name="过保", warranty_until=date(2026, 1, 1))
        assert warranty.reminders_backfill() == 2
        assert warranty.reminders_backfill() == 2
    keys = set(
        ScheduledAction.objects.filter(kind=warranty.WARRANTY_REMINDER).values_list(
            "idempotency_key", flat=True
        )
    )
    assert keys == {
        f"asset:{asset.pk}:warranty:2026-03-20",
        f"asset:{old.pk}:warranty:2027-01-01",
    }
    assert expired.pk not in ScheduledAction.objects.values_list("target_id", flat=True)


def test_seed_calendar_seeds_a_known_year_and_refuses_an_unknown_one(
    tmp_path: Any, capsys: Any, db: None
) -> None:
    call_command("seed_calendar", year=[2026])
    national_day = CalendarDay.objects.get(date=date(2026, 10, 1))
    assert (national_day.is_working, national_day.note) == (False, "国庆节")
    assert WorkingPeriod.objects.count() == 10
    seeded = CalendarDay.objects.count()
    call_command("seed_calendar", year=[2026])
    assert CalendarDay.objects.count() == seeded  # idempotent

    with pytest.raises(CommandError, match=r"No official holiday data for \[2199\]"):
        call_command("seed_calendar", year=[2199])
    assert not CalendarDay.objects.filter(date__year=2199).exists()

    data = tmp_path / "2199.csv"
    data.write_text(
        "date,kind,note\n2199-10-01,休,国庆节\n2199-09-28,班,国庆节调休\n",
        encoding="utf-8",
    )
    call_command("seed_calendar", year=[2199], file=data)
    assert dict(
        CalendarDay.objects.filter(date__year=2199).values_list("date", "is_working")
    ) == {date(2199, 10, 1): False, date(2199, 9, 28): True}
    bad = tmp_path / "bad.csv"
    bad.write_text("2199-13-01,休,\n", encoding="utf-8")
    with pytest.raises(CommandError, match="line 1: bad date"):
        call_command("seed_calendar", file=bad)


def test_the_category_list_reads_as_a_tree_with_inherited_teams(admin: Any) -> None:
    desk = TeamFactory(name="维修组")
    complaint = CategoryFactory(name="投诉")
    repair = CategoryFactory(name="报修", team=desk)
    lift = CategoryFactory(name="电梯", parent=repair)
    CategoryFactory(name="困人", parent=lift)
    CategoryFactory(name="物业", parent=complaint)
    page = admin.get(url("categories_list"))
    rows = [row["cells"] for row in page.context["page"].object_list]
    assert [str(cells[0]) for cells in rows] == [
        "投诉",
        "投诉 > 物业",
        "报修",
        "报修 > 电梯",
        "报修 > 电梯 > 困人",
    ] or [str(cells[0]) for cells in rows] == [
        "报修",
        "报修 > 电梯",
        "报修 > 电梯 > 困人",
        "投诉",
        "投诉 > 物业",
    ]
    teams = {str(cells[0]): str(cells[1]) for cells in rows}
    assert teams["报修"] == "维修组"
    assert teams["报修 > 电梯 > 困人"] == "沿用上级：维修组"
    assert teams["投诉 > 物业"] == ""


def test_a_holiday_opens_for_editing_with_its_date_in_the_date_input(
    admin: Any,
) -> None:
    day = CalendarDay.objects.create(date=date(2026, 10, 1), is_working=False)
    page = admin.get(url("holidays_edit", day.pk))
    assertContains(page, 'value="2026-10-01"')
    assert re.search(r'value="0"\s+id="id_is_working_0" required checked', page.text)


def _list_queries(client: Any, address: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(address)
    assert response.status_code == 200
    return len(captured)


def _grow(n: int) -> None:
    team = TeamFactory()
    for k in range(n):
        parent = CategoryFactory(name=f"一级{n}-{k}", team=team)
        CategoryFactory(name=f"二级{n}-{k}", parent=parent)
        UserFactory(team=team, role=Role.SERVICE)
        AssetFactory(warranty_until=date(2027, 1, 1))
        SLAPolicyFactory(priority=("urgent", "high", "normal", "low")[k % 4])


@pytest.mark.parametrize(
    "address",
    [
        "/settings/desk/categories/",
        "/settings/desk/sla/",
        "/settings/desk/assets/?warranty=in",
        "/settings/users/",
        "/settings/teams/",
        "/settings/departments/",
    ],
)
def test_each_settings_list_costs_the_same_queries_at_3_and_20_rows(
    admin: Any, address: str
) -> None:
    _grow(3)
    few = _list_queries(admin, address)
    _grow(17)
    assert _list_queries(admin, address) == few
