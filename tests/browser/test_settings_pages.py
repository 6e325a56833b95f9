"""The admins' settings area in a real Chromium: from the navbar to each section, an
SLA policy switched to 24×7 through its form, and a holiday deleted only after the
confirmation page. Every page is photographed in Chinese and in English
(test-artifacts/settings-*.png)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from crm.accounts.models import User
from crm.accounts.roles import Role
from service import calendar_data
from service.models import CalendarDay, CannedReply, SLAPolicy
from tests.factories import (
    AssetFactory,
    CategoryFactory,
    CustomerFactory,
    SLAPolicyFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = [
    ("index", "settings:index", "设置"),
    ("departments", "settings:departments_list", "部门"),
    ("teams", "settings:teams_list", "团队"),
    ("users", "settings:users_list", "用户与暂离"),
    ("categories", "service_admin:categories_list", "工单分类"),
    ("sla", "service_admin:sla_list", "SLA 策略"),
    ("sla-new", "service_admin:sla_create", "新建SLA 策略"),
    ("hours", "service_admin:hours_list", "工作时段"),
    ("holidays", "service_admin:holidays_list", "节假日与调休"),
    ("canned", "service_admin:canned_list", "常用回复"),
    ("assets", "service_admin:assets_list", "客户资产"),
]


def test_an_admin_keeps_the_desk_settings_in_kehu(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    artifacts_dir: Path,
    admin_user: User,
    service_agent: User,
) -> None:
    calendar_data.calendar_seed(years=[2026])
    desk = service_agent.team
    desk.lead = UserFactory(
        username="desk_lead", display_name="客服组长", team=desk, role=Role.SERVICE
    )
    desk.save()
    TeamFactory(name="工程一组", department=desk.department)
    repair = CategoryFactory(name="报修", team=desk)
    CategoryFactory(name="电梯", parent=repair)
    SLAPolicyFactory(
        name="报修·紧急",
        ticket_type="repair",
        priority="urgent",
        first_response_minutes=15,
        resolution_minutes=240,
        warn_before_minutes=5,
    )
    SLAPolicyFactory(name="投诉·中", ticket_type="complaint", priority="normal")
    CannedReply.objects.create(
        title="已受理",
        body="{客户}您好，您的工单 {工单号} 已受理，{处理人}将尽快联系您。",
    )
    customer = CustomerFactory(name="钱女士")
    asset = AssetFactory(
        customer=customer,
        name="中央空调（客厅）",
        serial="AC-2024-0778",
        warranty_until=date(2027, 6, 30),
    )

    log_in(admin_user)
    page.locator("#kehu-nav").get_by_role("link", name="设置", exact=True).click()
    expect(page.locator("main h1")).to_have_text("设置")

    forms = [
        ("team-edit", reverse("settings:teams_edit", args=[desk.pk]), "编辑团队"),
        (
            "user-edit",
            reverse("settings:users_edit", args=[service_agent.pk]),
            "编辑用户",
        ),
        (
            "category-edit",
            reverse("service_admin:categories_edit", args=[repair.pk]),
            "编辑分类",
        ),
        (
            "asset-edit",
            reverse("service_admin:assets_edit", args=[asset.pk]),
            "编辑资产",
        ),
        ("holiday-new", reverse("service_admin:holidays_create"), "新建日期设置"),
    ]
    for language in ("zh", "en"):
        if language == "en":
            page.context.add_cookies(
                [{"name": "django_language", "value": "en", "url": page.url}]
            )
        pages = [(name, reverse(url_name), title) for name, url_name, title in PAGES]
        for name, address, title in pages + forms:
            page.goto(address)
            if language == "zh":
                expect(page.locator("main h1")).to_contain_text(title)
            page.screenshot(
                path=artifacts_dir / f"settings-{name}-{language}.png", full_page=True
            )
    page.context.add_cookies(
        [{"name": "django_language", "value": "zh-hans", "url": page.url}]
    )

    # The urgent repair policy counts 24×7 from now on.
    page.goto(reverse("service_admin:sla_list"))
    page.get_by_role("link", name="报修·紧急").click()
    form = page.get_by_test_id("settings-form")
    form.get_by_label("全天候 24×7").check()
    form.get_by_label("提前预警（分钟）").fill("20")
    form.get_by_role("button", name="保存").click()
    expect(page.locator(".invalid-feedback, .alert-danger").first).to_contain_text(
        "提前预警必须短于首次响应时限"
    )
    form.get_by_label("提前预警（分钟）").fill("5")
    form.get_by_role("button", name="保存").click()
    expect(page.locator(".alert-success")).to_contain_text("已保存SLA 策略：报修·紧急")
    expect(page.get_by_test_id("settings-rows")).to_contain_text("全天候 24×7")
    assert SLAPolicy.objects.get(name="报修·紧急").is_round_the_clock

    # A holiday is deleted only after its confirmation page.
    page.goto(reverse("service_admin:holidays_list") + "?q=国庆节")
    page.get_by_role("link", name="2026-10-01").click()
    page.get_by_test_id("delete").click()
    expect(page.get_by_test_id("confirm-delete")).to_contain_text("删除日期设置")
    page.screenshot(path=artifacts_dir / "settings-confirm-zh.png", full_page=True)
    assert CalendarDay.objects.filter(date=date(2026, 10, 1)).exists()
    page.get_by_test_id("confirm").click()
    expect(page.locator(".alert-success")).to_contain_text("已删除")
    assert not CalendarDay.objects.filter(date=date(2026, 10, 1)).exists()
    assert page_problems == []
