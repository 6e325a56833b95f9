"""Look-alikes shown before saving, the database refusing a second owner of a phone,
resident ID numbers, and merging two records of the same customer."""

from __future__ import annotations

import datetime as dt
import re
import threading

import pghistory.models
import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from culture.deals import services as deal_services
from customers import selectors, services
from customers.models import (
    ContactLog,
    Customer,
    CustomerPhone,
    CustomerProfile,
)

CREATE_URL = reverse("customers:customer_create")
LIST_URL = reverse("customers:customer_list")
ID_NUMBER = "11010519491231002X"  # a valid sample (checksum X)


def merge_url(customer: Customer) -> str:
    return reverse("customers:customer_merge", args=[customer.pk])


def add(owner, name: str, *phones: str, **data: object) -> Customer:
    id_number = data.pop("id_number", None)
    return services.customer_create(
        by=owner,
        data={"name": name, **data},
        phone_numbers=list(phones),
        id_number=id_number,
    )


def form(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "张三",
        "kind": "owner",
        "stage": "lead",
        "tier": "C",
        "phone": "",
        "id_number": "",
    }
    data.update(changes)
    return data


def resubmitted(response, data: dict[str, object]) -> dict[str, object]:
    """What the browser sends on the second click: the form plus its confirm flag."""
    html = response.content.decode()
    confirm = re.search(r'name="confirm_duplicates" value="([^"]*)"', html)
    assert confirm, "the page asks for a second, explicit save"
    return {**data, "confirm_duplicates": confirm.group(1)}


@pytest.fixture
def as_sales(client, sales_rep):
    client.force_login(sales_rep)
    return client


# --- look-alikes before saving ------------------------------------------------------------


def test_a_matching_phone_shows_the_existing_customer_and_saves_nothing(
    as_sales, sales_rep
):
    existing = add(sales_rep, "张三", "13812345678")
    response = as_sales.post(CREATE_URL, form(name="张老三", phone="138 1234 5678"))
    assert response.status_code == 200
    assertContains(response, 'data-testid="duplicates"')
    assertContains(response, f'<a href="{existing.get_absolute_url()}">张三</a>')
    assert Customer.objects.count() == 1

    # Saving anyway cannot give the phone a second owner.
    again = as_sales.post(
        CREATE_URL, resubmitted(response, form(name="张老三", phone="138 1234 5678"))
    )
    assert again.status_code == 200
    assertContains(again, "电话 13812345678 已属于客户“张三”")
    assert Customer.objects.count() == 1


def test_a_matching_second_phone_is_found_too(as_sales, sales_rep):
    add(sales_rep, "张三", "13812345678", "010-88886666")
    response = as_sales.post(
        CREATE_URL, form(name="李四", phone="13900000000", other_phones="01088886666")
    )
    assertContains(response, 'data-testid="duplicates"')
    assert Customer.objects.count() == 1


def test_a_look_alike_of_another_team_is_shown_without_its_name(as_sales, outsider):
    add(outsider, "乙组的秘密客户", "13812345678")
    response = as_sales.post(CREATE_URL, form(name="张三", phone="13812345678"))
    assertContains(response, 'data-testid="duplicates"')
    assertContains(response, "另一团队的客户（销售二组）")
    assertNotContains(response, "乙组的秘密客户")
    assert Customer.objects.count() == 1


def test_a_matching_id_number_shows_the_existing_customer_and_saves_nothing(
    as_sales, sales_rep
):
    add(sales_rep, "张三", id_number=ID_NUMBER)
    data = form(name="张叁", id_number="11010519491231002x")
    response = as_sales.post(CREATE_URL, data)
    assertContains(response, 'data-testid="duplicates"')
    assertContains(response, ">张三</a>")
    assert Customer.objects.count() == 1
    again = as_sales.post(CREATE_URL, resubmitted(response, data))
    assertContains(again, "该身份证号已属于客户“张三”")
    assert Customer.objects.count() == 1


def test_the_same_name_at_the_same_company_asks_first_then_saves(as_sales, sales_rep):
    company = add(
        sales_rep, "华为技术有限公司", is_organization=True, kind="enterprise"
    )
    add(sales_rep, "张伟", organization=company)
    data = form(name="张伟", organization=company.pk)
    response = as_sales.post(CREATE_URL, data)
    assertContains(response, 'data-testid="duplicates"')
    assertContains(response, "请再次点击“保存”")
    # What was typed is kept for the second click.
    assertContains(response, 'value="张伟"')
    assert Customer.objects.filter(name="张伟").count() == 1

    saved = as_sales.post(CREATE_URL, resubmitted(response, data), follow=True)
    assertContains(saved, "客户已创建")
    assert Customer.objects.filter(name="张伟", organization=company).count() == 2


def test_the_same_name_elsewhere_is_not_a_look_alike(as_sales, sales_rep):
    company = add(
        sales_rep, "华为技术有限公司", is_organization=True, kind="enterprise"
    )
    add(sales_rep, "张伟", organization=company)
    response = as_sales.post(CREATE_URL, form(name="张伟"))
    assert response.status_code == 302
    assert Customer.objects.filter(name="张伟").count() == 2


def test_a_second_company_of_the_same_name_is_a_look_alike(as_sales, sales_rep):
    add(sales_rep, "华为技术有限公司", is_organization=True, kind="enterprise")
    response = as_sales.post(
        CREATE_URL,
        form(name="华为技术有限公司", is_organization="on", kind="enterprise"),
    )
    assertContains(response, 'data-testid="duplicates"')
    assert Customer.objects.count() == 1


def test_a_merged_customer_is_not_offered_as_a_look_alike(as_sales, sales_rep, manager):
    survivor = add(sales_rep, "张三", "13812345678")
    duplicate = add(sales_rep, "张三", id_number=ID_NUMBER)
    services.customer_merge(by=manager, survivor=survivor, duplicate=duplicate)
    response = as_sales.post(CREATE_URL, form(name="新客户", id_number=ID_NUMBER))
    # The ID number now belongs to the survivor, which is offered instead.
    assertContains(response, f'<a href="{survivor.get_absolute_url()}">张三</a>')
    assertNotContains(response, duplicate.get_absolute_url())


# --- one phone, one customer, whatever the timing ------------------------------------


def test_the_database_refuses_a_second_customer_with_the_same_phone(sales_rep):
    first = add(sales_rep, "张三", "13812345678")
    second = add(sales_rep, "李四")
    with pytest.raises(IntegrityError), transaction.atomic():
        CustomerPhone.objects.create(customer=second, number="13812345678")
    assert list(CustomerPhone.objects.values_list("customer", flat=True)) == [first.pk]


def _create_at_once(attempts: list[tuple[object, str]], number: str) -> list[object]:
    """Each (user, name) creates a customer with `number` from its own thread and
    database connection, all released at the same moment; returns what each got."""
    barrier = threading.Barrier(len(attempts))
    outcomes: list[object] = []

    def create(by, name: str) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes.append(add(by, name, number))
        except ValidationError as error:
            outcomes.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=attempt) for attempt in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_creations_with_the_same_phone_make_one_customer(
    sales_rep, teammate
):
    for round_ in range(5):
        number = f"1381234000{round_}"
        outcomes = _create_at_once(
            [(sales_rep, f"甲{round_}"), (teammate, f"乙{round_}")], number
        )
        errors = [o for o in outcomes if isinstance(o, ValidationError)]
        assert len(outcomes) == 2 and len(errors) == 1, outcomes
        assert "phone" in errors[0].message_dict
        assert CustomerPhone.objects.filter(number=number).count() == 1
        assert Customer.objects.filter(name__endswith=str(round_)).count() == 1


# --- resident ID numbers ------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["110105194912310021", "11010519491231002", "1101051949123100XX", "abc"]
)
def test_an_id_number_failing_the_checksum_is_refused(as_sales, raw):
    response = as_sales.post(CREATE_URL, form(id_number=raw))
    assertContains(response, "身份证号码无效，请核对（含校验位）")
    assert Customer.objects.count() == 0


def test_a_valid_id_number_is_stored_once_encrypted_and_shown_masked(
    as_sales, sales_rep
):
    response = as_sales.post(
        CREATE_URL, form(id_number="１１０１０５１９４９１２３１００２ｘ"), follow=True
    )
    customer = Customer.objects.get()
    assert customer.id_number_masked == "1101**********002X"
    assertContains(response, "1101**********002X")
    assertNotContains(response, ID_NUMBER)
    # Nowhere in the row, nor in its audit trail, is the number in clear.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT row_to_json(c)::text FROM customers_customer c WHERE id = %s",
            [customer.pk],
        )
        assert ID_NUMBER not in cursor.fetchone()[0]
    events = pghistory.models.Events.objects.tracks(customer)
    assert ID_NUMBER not in str([e.pgh_data for e in events])


# --- merging -------------------------------------------------------------------------


@pytest.fixture
def pair(sales_rep, teammate):
    """Two records of one company, each with things attached."""
    survivor = add(
        sales_rep,
        "华为技术有限公司",
        "13800000001",
        is_organization=True,
        kind="enterprise",
        tags=["大客户"],
    )
    duplicate = add(
        teammate,
        "华为技术公司",
        "13800000002",
        "010-66668888",
        is_organization=True,
        kind="enterprise",
        tags=["老客户"],
        email="hw@example.com",
    )
    services.profile_update(
        by=teammate, customer=duplicate, data={"interests": "高尔夫"}
    )
    for summary in ("第一次拜访", "报价"):
        services.contact_log_create(
            by=teammate, customer=duplicate, channel="visit", summary=summary
        )
    services.contact_log_create(
        by=sales_rep, customer=survivor, channel="phone", summary="电话沟通"
    )
    followup = services.followup_create(
        by=teammate,
        customer=duplicate,
        assignee=teammate,
        due_at=timezone.now() + dt.timedelta(days=1),
        note="送合同",
    )
    # 累计成交额 is derived from payments (culture.deals): 500 and 1,000 received.
    for owner, customer, amount in (
        (sales_rep, survivor, 500),
        (teammate, duplicate, 1000),
    ):
        deal = deal_services.deal_create(
            by=owner, customer=customer, data={"title": "合同", "amount": 5000}
        )
        deal_services.payment_add(
            by=owner, deal=deal, amount=amount, received_on=timezone.localdate()
        )
    member = add(teammate, "张伟", organization=duplicate)
    dealer = add(
        teammate,
        "华为北京经销商",
        is_organization=True,
        kind="dealer",
        parent=duplicate,
    )
    return {
        "survivor": survivor,
        "duplicate": duplicate,
        "followup": followup,
        "member": member,
        "dealer": dealer,
    }


@pytest.fixture
def as_manager(client, manager):
    client.force_login(manager)
    return client


def test_the_merge_page_compares_the_two_before_merging(as_manager, pair):
    survivor, duplicate = pair["survivor"], pair["duplicate"]
    page = as_manager.get(merge_url(survivor), {"other": duplicate.pk})
    assertContains(page, "联系记录、跟进、电话和下级关系将全部移到")
    assertContains(page, "确认合并")
    assert not Customer.objects.exclude(merged_into=None).exists()


def test_merging_moves_everything_to_the_survivor(as_manager, manager, pair):
    survivor, duplicate = pair["survivor"], pair["duplicate"]
    response = as_manager.post(
        merge_url(survivor), {"other": duplicate.pk}, follow=True
    )
    assert response.redirect_chain == [(survivor.get_absolute_url(), 302)]
    assertContains(response, "已将“华为技术公司”合并到本客户")

    assert sorted(
        ContactLog.objects.filter(customer=survivor).values_list("summary", flat=True)
    ) == sorted(["第一次拜访", "报价", "电话沟通"])
    assert not ContactLog.objects.filter(customer=duplicate).exists()
    pair["followup"].refresh_from_db()
    assert pair["followup"].customer == survivor
    assert dict(
        CustomerPhone.objects.filter(customer=survivor).values_list(
            "number", "is_primary"
        )
    ) == {"13800000001": True, "13800000002": False, "01066668888": False}
    pair["member"].refresh_from_db()
    assert pair["member"].organization == survivor
    pair["dealer"].refresh_from_db()
    assert pair["dealer"].parent == survivor

    survivor.refresh_from_db()
    assert survivor.contact_count == 3
    assert survivor.lifetime_value == 1500
    assert survivor.tags == ["大客户", "老客户"]
    assert survivor.email == "hw@example.com"
    assert CustomerProfile.objects.get(customer=survivor).interests == "高尔夫"

    # The survivor's page shows what came over.
    for text in ("第一次拜访", "报价", "送合同", "张伟", "华为北京经销商", "高尔夫"):
        assertContains(response, text)

    duplicate.refresh_from_db()
    assert duplicate.merged_into == survivor


def test_the_merged_duplicate_is_hidden_from_the_list_and_search(
    as_manager, manager, pair
):
    survivor, duplicate = pair["survivor"], pair["duplicate"]
    services.customer_merge(by=manager, survivor=survivor, duplicate=duplicate)
    names = as_manager.get(LIST_URL).content.decode()
    assert "华为技术公司<" not in names
    assert "华为技术有限公司" in names
    found = as_manager.post(LIST_URL, {"q": "66668888"}, follow=True).content.decode()
    assert "华为技术有限公司" in found
    assert "华为技术公司<" not in found
    # Its own page stays readable and points to the survivor.
    page = as_manager.get(duplicate.get_absolute_url())
    assertContains(page, "该客户已合并到")
    assertContains(page, survivor.get_absolute_url())


def test_a_merge_is_audited_with_who_did_it(as_manager, manager, pair):
    survivor, duplicate = pair["survivor"], pair["duplicate"]
    as_manager.post(merge_url(survivor), {"other": duplicate.pk})

    history = selectors.customer_history(customer=duplicate, can_see_pii=True)
    [merged] = [e for e in history if "merged_into_id" in (e.pgh_diff or {})]
    assert merged.actor == str(manager)
    assert merged.pgh_diff["merged_into_id"] == [None, survivor.pk]
    events = pghistory.models.Events.objects.tracks(
        ContactLog.objects.get(summary="报价")
    )
    [moved] = [e for e in events if "customer_id" in (e.pgh_diff or {})]
    assert moved.pgh_diff["customer_id"] == [duplicate.pk, survivor.pk]
    assert moved.pgh_context["user"] == manager.pk
    history = as_manager.get(duplicate.get_absolute_url())
    assertContains(history, str(manager))
    assertContains(history, "merged_into")


def test_merging_with_an_already_merged_customer_is_refused(
    as_manager, manager, sales_rep, pair
):
    survivor, duplicate = pair["survivor"], pair["duplicate"]
    services.customer_merge(by=manager, survivor=survivor, duplicate=duplicate)
    third = add(sales_rep, "华为公司")

    # Into the merged one: the service refuses, the page says why.
    response = as_manager.post(merge_url(duplicate), {"other": third.pk}, follow=True)
    assertContains(response, "其中一位客户已被合并，请刷新后重试")
    third.refresh_from_db()
    assert third.merged_into is None

    # The merged one as the duplicate: it is no longer offered at all.
    assert as_manager.post(merge_url(third), {"other": duplicate.pk}).status_code == 404
    with pytest.raises(ValidationError):
        services.customer_merge(by=manager, survivor=third, duplicate=duplicate)
    assert ContactLog.objects.filter(customer=third).count() == 0


def test_a_contact_logged_on_a_merged_record_is_not_lost(
    client, manager, sales_rep, pair
):
    survivor, duplicate = pair["survivor"], pair["duplicate"]
    services.customer_merge(by=manager, survivor=survivor, duplicate=duplicate)
    client.force_login(sales_rep)
    client.post(
        reverse("customers:contact_create", args=[duplicate.pk]),
        {"channel": "phone", "summary": "从旧链接记录的电话"},
        HTTP_HX_REQUEST="true",
    )
    assert not ContactLog.objects.filter(customer=duplicate).exists()


@pytest.mark.parametrize("persona", ["sales_rep", "service_agent"])
def test_only_managers_may_merge(request, client, pair, persona):
    client.force_login(request.getfixturevalue(persona))
    survivor, duplicate = pair["survivor"], pair["duplicate"]
    assert client.get(merge_url(survivor)).status_code == 403
    assert client.post(merge_url(survivor), {"other": duplicate.pk}).status_code == 403
    duplicate.refresh_from_db()
    assert duplicate.merged_into is None
    assert ContactLog.objects.filter(customer=duplicate).count() == 2


def test_a_manager_cannot_merge_a_customer_of_another_department(
    as_manager, far_outsider, pair
):
    far = add(far_outsider, "华为华南")
    response = as_manager.post(merge_url(pair["survivor"]), {"other": far.pk})
    assert response.status_code == 404
    far.refresh_from_db()
    assert far.merged_into is None
