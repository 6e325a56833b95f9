"""Personal data on the customer page: masked phones, the audited ID-number reveal, and
the one-to-one profile form."""

from __future__ import annotations

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from crm.core import audit
from crm.core.models import AccessLog
from customers import services
from customers.models import Customer, CustomerProfile


def _reveals():
    """The audit log's rows of this kind (sign-ins and refusals are logged too)."""
    return AccessLog.objects.filter(action=audit.ID_REVEALED)


ID_NUMBER = "11010519491231002X"
MASKED_ID = "1101**********002X"


def detail_url(customer: Customer) -> str:
    return reverse("customers:customer_detail", args=[customer.pk])


def reveal_url(customer: Customer) -> str:
    return reverse("customers:customer_reveal", args=[customer.pk])


def profile_url(customer: Customer) -> str:
    return reverse("customers:customer_profile_edit", args=[customer.pk])


@pytest.fixture
def customer(sales_rep):
    return services.customer_create(
        by=sales_rep,
        data={"name": "张三", "address": "朝阳区建国路88号"},
        phone_numbers=["13812345678", "010-88886666"],
        id_number=ID_NUMBER,
    )


# --- masking ------------------------------------------------------------------------


def test_the_service_desk_sees_every_phone_masked(client, service_agent, customer):
    client.force_login(service_agent)
    page = client.get(detail_url(customer))
    for masked in ("138****5678", "010****6666", MASKED_ID, "（已隐藏）"):
        assertContains(page, masked)
    for clear in ("13812345678", "01088886666", ID_NUMBER, "建国路88号"):
        assertNotContains(page, clear)
    listing = client.get(reverse("customers:customer_list"), {"q": "张三"})
    assertContains(listing, "138****5678")
    assertNotContains(listing, "13812345678")


@pytest.mark.parametrize("persona", ["sales_rep", "teammate", "manager"])
def test_the_sales_side_sees_phones_in_full_and_the_id_number_masked(
    request, client, customer, persona
):
    client.force_login(request.getfixturevalue(persona))
    page = client.get(detail_url(customer))
    for clear in ("13812345678", "01088886666", "建国路88号", MASKED_ID):
        assertContains(page, clear)
    assertNotContains(page, "138****5678")
    # The ID number is never on the page until someone asks for it, with a reason.
    assertNotContains(page, ID_NUMBER)
    assertContains(page, 'name="reason"')


# --- revealing the ID number ---------------------------------------------------------


def test_revealing_with_a_reason_shows_the_number_and_logs_it(
    client, sales_rep, customer
):
    client.force_login(sales_rep)
    response = client.post(
        reveal_url(customer), {"reason": "客户来电核实身份"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assertContains(response, f'<span data-testid="revealed-id">{ID_NUMBER}</span>')
    assertContains(response, "本次查看已记录")
    log = _reveals().get()
    assert (log.user, log.action, log.object_type, log.object_id) == (
        sales_rep,
        "reveal_id_number",
        "customer",
        customer.pk,
    )
    assert log.detail == "客户来电核实身份"


def test_each_reveal_is_logged(client, manager, customer):
    client.force_login(manager)
    client.post(reveal_url(customer), {"reason": "签约核对"})
    client.post(reveal_url(customer), {"reason": "再次核对"})
    assert list(_reveals().order_by("pk").values_list("detail", flat=True)) == [
        "签约核对",
        "再次核对",
    ]


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_without_a_reason_nothing_is_revealed_or_logged(
    client, sales_rep, customer, reason
):
    client.force_login(sales_rep)
    data = {} if reason is None else {"reason": reason}
    response = client.post(reveal_url(customer), data, follow=True)
    assert response.redirect_chain == [(detail_url(customer), 302)]
    assertContains(response, "请说明查看原因")
    assertNotContains(response, ID_NUMBER)
    assert not _reveals().exists()


def test_the_service_desk_may_not_reveal(client, service_agent, customer):
    client.force_login(service_agent)
    assertNotContains(client.get(detail_url(customer)), 'name="reason"')
    response = client.post(reveal_url(customer), {"reason": "好奇"})
    assert response.status_code == 403
    assertNotContains(response, ID_NUMBER, status_code=403)
    assert not _reveals().exists()


@pytest.mark.parametrize("persona", ["outsider", "far_outsider"])
def test_another_team_cannot_reveal(request, client, customer, persona):
    client.force_login(request.getfixturevalue(persona))
    response = client.post(reveal_url(customer), {"reason": "顺便看看"})
    assert response.status_code == 404
    assert not _reveals().exists()


def test_revealing_a_customer_without_an_id_number_logs_nothing(client, sales_rep):
    plain = services.customer_create(by=sales_rep, data={"name": "李四"})
    client.force_login(sales_rep)
    response = client.post(reveal_url(plain), {"reason": "核对"})
    assertContains(response, "—")
    assert not _reveals().exists()


# --- the one-to-one profile form -------------------------------------------------------


PROFILE = {
    "preferred_channel": "wechat",
    "preferred_time": "weekend",
    "language": "四川话",
    "do_not_call": "on",
    "special_needs": "听力不好，请说慢一点",
    "interests": "茶艺",
    "family_notes": "",
    "notes": "女儿在深圳工作",
}


def test_the_salesperson_fills_in_the_profile_and_sees_it_on_the_page(
    client, sales_rep, customer
):
    client.force_login(sales_rep)
    assertContains(client.get(profile_url(customer)), "一对一档案：张三")
    response = client.post(profile_url(customer), PROFILE, follow=True)
    assert response.redirect_chain == [(detail_url(customer), 302)]
    assertContains(response, "一对一档案已保存")
    for text in (
        "偏好：微信",
        "方便时间：周末",
        "语言：四川话",
        "请勿来电",
        "听力不好，请说慢一点",
        "茶艺",
        "女儿在深圳工作",
    ):
        assertContains(response, text)
    profile = CustomerProfile.objects.get(customer=customer)
    assert profile.do_not_call and not profile.do_not_sms


def test_a_bad_profile_value_re_renders_and_changes_nothing(
    client, sales_rep, customer
):
    client.force_login(sales_rep)
    response = client.post(
        profile_url(customer), {**PROFILE, "preferred_time": "midnight"}
    )
    assert response.status_code == 200
    assertContains(response, "选择一个有效的选项")
    assert not CustomerProfile.objects.get(customer=customer).has_content


def test_the_service_desk_reads_the_profile_but_cannot_edit_it(
    client, sales_rep, service_agent, customer
):
    services.profile_update(
        by=sales_rep, customer=customer, data={"special_needs": "需要轮椅"}
    )
    client.force_login(service_agent)
    page = client.get(detail_url(customer))
    assertContains(page, "需要轮椅")
    assertNotContains(page, profile_url(customer))
    assert client.post(profile_url(customer), PROFILE).status_code == 403
    assert CustomerProfile.objects.get(customer=customer).interests == ""


def test_another_team_cannot_edit_the_profile(client, outsider, customer):
    client.force_login(outsider)
    assert client.post(profile_url(customer), PROFILE).status_code == 404
    assert CustomerProfile.objects.get(customer=customer).interests == ""
