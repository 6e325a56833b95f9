"""The customer list's one search box, its filters, sorting and bounded pagination.

Customers are created through `services.customer_create`, as the "new customer" form
does, so their phones, pinyin and name pieces are what production stores.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from urllib.parse import parse_qsl, unquote_plus, urlsplit

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from crm.core import pagination
from customers import search, selectors, services
from customers.models import Customer, CustomerPhone
from tests.factories import CustomerFactory

LIST_URL = reverse("customers:customer_list")
CUSTOMER_LINK = re.compile(r'<a href="/customers/(\d+)/">([^<]+)</a>')
NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def add(owner, name: str, *phones: str, **data: object) -> Customer:
    """A customer of `owner` saved the way the create form saves it."""
    return services.customer_create(
        by=owner, data={"name": name, **data}, phone_numbers=list(phones)
    )


def _assert_no_phone_digits(url: str, query: str) -> None:
    """No run of 7+ digits of `query` in `url` (the ?s= token aside)."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query) if k != "s"]
    digits = re.sub(r"\D", "", unquote_plus(parts.path + repr(kept)))
    assert not re.search(r"\d{7}", digits), url
    wanted = re.sub(r"\D", "", query.translate(search.FULL_WIDTH))
    assert len(wanted) < 7 or wanted not in digits, url


def find(client, query: str, url: str = "", **headers: str):
    """Search as the search box does: POST, then follow the redirect to the list.

    A phone or ID number must come back as ?s=<token>: no URL on the way holds it.
    """
    response = client.post(url or LIST_URL, {"q": query}, follow=True, **headers)
    for address, _status in response.redirect_chain:
        if search.is_sensitive(query):
            assert "s=" in address and "q=" not in address, address
        _assert_no_phone_digits(address, query)
    return response


def listed(response) -> set[str]:
    assert response.status_code == 200
    return {name for _, name in CUSTOMER_LINK.findall(response.content.decode())}


def ordered(response) -> list[str]:
    assert response.status_code == 200
    return [name for _, name in CUSTOMER_LINK.findall(response.content.decode())]


@pytest.fixture
def as_sales(client, sales_rep):
    client.force_login(sales_rep)
    return client


@pytest.fixture
def people(sales_rep):
    """Names chosen so that a careless match (any character, any order) shows up."""
    return {
        name: add(sales_rep, name, phone)
        for name, phone in [
            ("张三", "13812345678"),
            ("张三丰", "13900001111"),
            ("李张三", "13700002222"),
            ("张四三", "13600003333"),
            ("三丰张三", "13500004444"),
            ("王小明", "15800005555"),
            ("老王", "15900006666"),
            ("赵四", "18600007777"),
            ("李四", "18700008888"),
        ]
    }


# --- Chinese names ----------------------------------------------------------------------


def test_one_character_finds_every_name_containing_it(as_sales, people):
    assert listed(find(as_sales, "王")) == {"王小明", "老王"}


def test_two_characters_find_names_containing_them_side_by_side(as_sales, people):
    # 张四三 has both characters but not together: it is not a match.
    assert listed(find(as_sales, "张三")) == {
        "张三",
        "张三丰",
        "李张三",
        "三丰张三",
    }


def test_three_characters_find_only_the_whole_string(as_sales, people):
    # 三丰张三 holds every two-character piece of 张三丰, but not 张三丰 itself.
    assert listed(find(as_sales, "张三丰")) == {"张三丰"}
    assert listed(find(as_sales, "丰张三")) == {"三丰张三"}


# --- pinyin -------------------------------------------------------------------------------


def test_full_pinyin_finds_the_name(as_sales, people):
    assert listed(find(as_sales, "zhangsan")) == {"张三", "张三丰"}


def test_pinyin_initials_find_the_name(as_sales, people):
    # Initials match as a prefix (zsf, zss), and 赵四 (zhao si) shares them too.
    assert listed(find(as_sales, "zs")) == {
        "张三",
        "张三丰",
        "张四三",
        "赵四",
    }
    assert listed(find(as_sales, "zsf")) == {"张三丰"}


def test_a_pinyin_prefix_in_any_case_finds_the_name(as_sales, people):
    for query in ("zhang", "zhangs", "ZhangSan", "ZS"):
        found = listed(find(as_sales, query))
        assert "张三" in found, query
        assert "李四" not in found, query


def test_full_width_letters_are_read_as_pinyin(as_sales, people):
    assert listed(find(as_sales, "ｚｓｆ")) == {"张三丰"}


def test_a_latin_name_is_found_by_its_letters(as_sales, sales_rep):
    add(sales_rep, "Apple 苹果专卖店", is_organization=True, kind="enterprise")
    assert listed(find(as_sales, "apple")) == {"Apple 苹果专卖店"}


def test_a_surname_with_two_readings_is_found_by_its_surname_reading(
    as_sales, sales_rep
):
    surnames = {"曾小明": "zeng", "单小芳": "shan", "解小东": "xie", "仇小兵": "qiu"}
    surnames["翟小丽"] = "zhai"
    for name in surnames:
        add(sales_rep, name)
    for name, reading in surnames.items():
        assert name in listed(find(as_sales, reading)), reading
        initials = reading[0] + "x"
        assert name in listed(find(as_sales, initials)), initials


# --- phones ------------------------------------------------------------------------------


def test_any_three_or_more_digits_of_a_mobile_find_it(as_sales, people):
    for query in ("5678", "1234", "812", "12345678", "138 1234 5678", "138-1234-5678"):
        assert listed(find(as_sales, query)) == {"张三"}, query


def test_full_width_digits_find_the_phone(as_sales, people):
    assert listed(find(as_sales, "５６７８")) == {"张三"}


def test_any_phone_of_a_customer_finds_it_not_only_the_primary(as_sales, sales_rep):
    add(sales_rep, "两个号码", "13812345678", "13987654321")
    assert listed(find(as_sales, "4321")) == {"两个号码"}


def test_a_landline_is_found_by_its_digits(as_sales, sales_rep):
    customer = add(sales_rep, "座机客户", "010-8888 6666")
    assert CustomerPhone.objects.get(customer=customer).number == "01088886666"
    add(sales_rep, "手机客户", "13800138000")
    for query in ("88886666", "010-8888 6666", "(010) 88886666", "6666", "01088"):
        assert listed(find(as_sales, query)) == {"座机客户"}, query


def test_one_or_two_digits_find_nothing_rather_than_everyone(as_sales, people):
    for query in ("1", "12", "１２", "5", "-", "()", "1-2"):
        response = find(as_sales, query)
        assert listed(response) == set(), query
        assertContains(response, "没有找到与")


def test_a_number_with_the_country_code_finds_the_customer(as_sales, people):
    assert listed(find(as_sales, "+86 138 1234 5678")) == {"张三"}


# --- company names and scope ----------------------------------------------------------


def test_company_name_finds_the_company(as_sales, sales_rep):
    huawei = add(sales_rep, "华为技术有限公司", is_organization=True, kind="enterprise")
    add(sales_rep, "小米科技有限责任公司", is_organization=True, kind="enterprise")
    # A company's name also finds its people (tests/customers/test_search_organization.py).
    add(sales_rep, "张三", organization=huawei)
    assert listed(find(as_sales, "华为")) == {"华为技术有限公司", "张三"}
    assert listed(find(as_sales, "技术有限")) == {"华为技术有限公司", "张三"}
    assert listed(find(as_sales, "有限")) == {
        "华为技术有限公司",
        "小米科技有限责任公司",
        "张三",
    }
    assert listed(find(as_sales, "小米")) == {"小米科技有限责任公司"}


def test_search_never_finds_customers_outside_the_users_scope(
    client, sales_rep, teammate, outsider, far_outsider, manager, service_agent
):
    add(sales_rep, "王甲组", "13811110001")
    add(teammate, "王甲组二", "13811110002")
    add(outsider, "王乙组", "13811110003")
    add(far_outsider, "王华南", "13811110004")
    expected = {
        sales_rep: {"王甲组", "王甲组二"},
        outsider: {"王乙组"},
        manager: {"王甲组", "王甲组二", "王乙组"},
        service_agent: {"王甲组", "王甲组二", "王乙组", "王华南"},
    }
    for user, names in expected.items():
        client.force_login(user)
        for query in ("王", "wang", "w", "1111000", "0004"):
            found = listed(find(client, query))
            assert found == (names if query != "0004" else names & {"王华南"}), (
                user,
                query,
            )


# --- odd input --------------------------------------------------------------------------


ODD_QUERIES = [
    "'",
    '"',
    "%",
    "_",
    "\\",
    "--",
    ";",
    "%_%",
    "\\%",
    "王%",
    "王_",
    "王' OR '1'='1",
    "'; DROP TABLE customers_customer; --",
    "' || pg_sleep(5) --",
    "<script>alert(1)</script>",
    "😀",
]


def test_odd_input_finds_nothing_and_does_not_fail(as_sales, people):
    for query in ODD_QUERIES:
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            response = find(as_sales, query, **headers)
            assert listed(response) == set(), query
            assertContains(response, "没有找到与")
            assert "<script>alert(1)</script>" not in response.content.decode()
    assert Customer.objects.count() == len(people)


def test_a_query_of_blanks_is_no_query(as_sales, people):
    assert listed(find(as_sales, " \u3000 ")) == set(people)


def test_a_nul_byte_or_a_very_long_query_does_not_fail(as_sales, people):
    for query in ("\x00", "王\x00", "a" * 1000, "王" * 101, "1" * 5000):
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            response = find(as_sales, query, **headers)
            assert response.status_code == 200, query[:10]


def test_a_too_long_query_lists_nobody_and_says_why(as_sales, people):
    response = find(as_sales, "不存在" * 40)
    assert listed(response) == set()
    assertContains(response, "筛选条件有误")


def test_a_nul_byte_in_the_pool_search_does_not_fail(as_sales, people):
    response = as_sales.get(reverse("customers:pool_list"), {"q": "王\x00"})
    assert response.status_code == 200


def test_a_nul_byte_in_the_merge_search_does_not_fail(client, manager, people):
    client.force_login(manager)
    survivor = people["张三"]
    url = reverse("customers:customer_merge", args=[survivor.pk])
    assert client.get(url, {"q": "张\x00"}).status_code == 200


# --- the indexes behind it --------------------------------------------------------------


def _bulk_customers(owner, count: int) -> None:
    """`count` customers with phones, bulk-created; every 100th has 王 in its name."""
    family = "赵钱孙李周吴郑冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜"
    given = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英"
    customers = []
    for n in range(count):
        name = family[n % len(family)] + given[(n // 7) % len(given)] + given[n % 11]
        if n % 100 == 0:
            name = "王" + name[1:]
        pinyin, initials = search.pinyin_of(name)
        customers.append(
            Customer(
                name=name,
                name_pinyin=pinyin,
                name_initials=initials,
                owner=owner,
                team=owner.team,
                phone=f"139{n:08d}",
            )
        )
    created = Customer.objects.bulk_create(customers, batch_size=1000)
    CustomerPhone.objects.bulk_create(
        [CustomerPhone(customer=c, number=c.phone, is_primary=True) for c in created],
        batch_size=1000,
    )


def _explain(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def _priced(explain: Callable[[], str]) -> str:
    """The plan; on tables this small the planner may prefer a sequential scan, so if
    it does, the index must still be usable when sequential scans are priced out."""
    plan = explain()
    if "Seq Scan on customers_" not in plan:
        return plan
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    try:
        return explain()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = on")


def test_name_and_phone_searches_use_their_indexes(sales_rep):
    _bulk_customers(sales_rep, 2000)
    with connection.cursor() as cursor:
        # A bulk insert leaves GIN entries in the pending list, which the planner
        # prices high; autovacuum merges it in production (VACUUM cannot run here).
        for index in ("customer_name_grams", "customer_phone_trgm"):
            cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [index])
        cursor.execute("ANALYZE customers_customer")
        cursor.execute("ANALYZE customers_customerphone")

    one_character = selectors.customer_list(user=sales_rep, query="王")
    assert one_character.count() == 20
    assert "customer_name_grams" in _priced(one_character.explain)

    two_characters = selectors.customer_list(user=sales_rep, query="王伟")
    assert "customer_name_grams" in _priced(two_characters.explain)

    # The phone match may run as a query of its own before the list's query.
    with CaptureQueriesContext(connection) as lookups:
        phone_tail = selectors.customer_list(user=sales_rep, query="0001234")
    assert phone_tail.count() == 1
    plans = [_priced(phone_tail.explain)] + [
        _priced(lambda sql=query["sql"]: _explain(sql))
        for query in lookups.captured_queries
    ]
    assert "customer_phone_trgm" in "\n".join(plans)


# --- filters ----------------------------------------------------------------------------


@pytest.fixture
def assorted(sales_rep, teammate, outsider):
    """Customers of two teams that differ in one attribute each."""
    with time_machine.travel(NOW - dt.timedelta(days=60), tick=False):
        quiet = add(sales_rep, "久未联系")
        add(sales_rep, "从未联系")
    with time_machine.travel(NOW - dt.timedelta(days=2), tick=False):
        fresh = add(sales_rep, "刚联系过")
    with time_machine.travel(NOW - dt.timedelta(days=45), tick=False):
        services.contact_log_create(
            by=sales_rep, customer=quiet, channel="phone", summary="上次沟通"
        )
    with time_machine.travel(NOW - dt.timedelta(days=1), tick=False):
        services.contact_log_create(
            by=sales_rep, customer=fresh, channel="visit", summary="拜访"
        )
    with time_machine.travel(NOW - dt.timedelta(days=1), tick=False):
        add(sales_rep, "企业客户", kind="enterprise", is_organization=True)
        add(sales_rep, "经销商客户", kind="dealer", is_organization=True)
        add(sales_rep, "成交客户", stage="customer")
        add(sales_rep, "A级客户", tier="A")
        add(sales_rep, "重点客户", is_key_account=True)
        add(sales_rep, "学区房客户", tags=["学区房", "改善"])
        add(sales_rep, "上海客户", province="上海市", city="上海市")
        add(sales_rep, "杭州客户", province="浙江省", city="杭州市")
        add(teammate, "同组客户")
        add(outsider, "乙组客户")
    return {c.name: c for c in Customer.objects.all()}


MINE = {
    "久未联系",
    "从未联系",
    "刚联系过",
    "企业客户",
    "经销商客户",
    "成交客户",
    "A级客户",
    "重点客户",
    "学区房客户",
    "上海客户",
    "杭州客户",
}


FILTER_CASES = [
    ({"kind": "enterprise"}, {"企业客户"}),
    ({"kind": "dealer"}, {"经销商客户"}),
    ({"stage": "customer"}, {"成交客户"}),
    ({"tier": "A"}, {"A级客户"}),
    ({"is_key_account": "on"}, {"重点客户"}),
    ({"tag": "学区房"}, {"学区房客户"}),
    ({"tag": "学区"}, set()),  # a tag is matched whole
    ({"province": "浙江省"}, {"杭州客户"}),
    ({"city": "上海市"}, {"上海客户"}),
    ({"days_since_contact": 30}, {"久未联系", "从未联系"}),
    ({"days_since_contact": 1000}, set()),
    ({"kind": "enterprise", "q": "企业"}, {"企业客户"}),
    ({"kind": "dealer", "q": "企业"}, set()),
    ({"tier": "A", "stage": "customer"}, set()),
]


def test_each_filter_narrows_the_list(as_sales, assorted):
    with time_machine.travel(NOW, tick=False):
        for params, expected in FILTER_CASES:
            assert listed(as_sales.get(LIST_URL, params)) == expected, params


def test_owner_and_team_filters(
    client, manager, sales_rep, teammate, outsider, assorted
):
    client.force_login(manager)
    assert listed(client.get(LIST_URL, {"owner": teammate.pk})) == {"同组客户"}
    assert listed(client.get(LIST_URL, {"owner": sales_rep.pk})) == MINE
    assert listed(client.get(LIST_URL, {"team": outsider.team_id})) == {"乙组客户"}
    assert listed(client.get(LIST_URL, {"team": sales_rep.team_id})) == MINE | {
        "同组客户"
    }


def test_sales_sees_only_their_teams_people_in_the_owner_filter(
    as_sales, sales_rep, teammate, outsider, far_outsider
):
    html = as_sales.get(LIST_URL).content.decode()
    owner_select = re.search(r'<select name="owner".*?</select>', html, re.S).group(0)
    assert str(teammate) in owner_select
    assert str(outsider) not in owner_select
    assert str(far_outsider) not in owner_select


def test_filtering_by_an_owner_outside_the_scope_shows_none_of_their_customers(
    as_sales, outsider, assorted
):
    assert "乙组客户" not in listed(as_sales.get(LIST_URL, {"owner": outsider.pk}))


# --- sorting ------------------------------------------------------------------------------


def test_sort_by_last_contact_puts_the_longest_silent_first(as_sales, assorted):
    names = ordered(as_sales.get(LIST_URL, {"sort": "last_contact"}))
    assert names.index("久未联系") < names.index("刚联系过")


def test_sort_by_last_contact_puts_never_contacted_customers_first(as_sales, assorted):
    names = ordered(as_sales.get(LIST_URL, {"sort": "last_contact"}))
    assert names.index("从未联系") < names.index("久未联系")


def test_an_unknown_sort_does_not_fail_nor_widen_the_search(as_sales, people):
    for sort in ("popularity", "name; DROP TABLE x", "-id", "__class__"):
        response = as_sales.get(LIST_URL, {"q": "王", "sort": sort})
        assert listed(response) <= {"王小明", "老王"}, sort


def test_an_unknown_sort_falls_back_to_the_default_order_keeping_the_search(
    as_sales, people
):
    response = as_sales.get(LIST_URL, {"q": "王", "sort": "popularity"})
    assert ordered(response) == ordered(find(as_sales, "王"))
    assert listed(response) == {"王小明", "老王"}


# --- pagination -------------------------------------------------------------------------


def test_the_list_says_how_many_customers_match(as_sales, people):
    assertContains(as_sales.get(LIST_URL), "共 9 位客户")
    assertContains(find(as_sales, "王"), "共 2 位客户")


def test_counts_over_the_cap_are_not_given_exactly(as_sales, sales_rep, monkeypatch):
    monkeypatch.setattr(pagination, "MAX_COUNT", 30)
    CustomerFactory.create_batch(31, owner=sales_rep)
    response = as_sales.get(LIST_URL)
    assertContains(response, "超过 30 位客户，请缩小筛选范围")
    assertNotContains(response, "共 31 位客户")
    assert len(ordered(response)) == 25
    # At the cap exactly, the count is still given.
    Customer.objects.filter(pk=Customer.objects.order_by("pk")[0].pk).delete()
    response = as_sales.get(LIST_URL)
    assertContains(response, "共 30 位客户")
    assertNotContains(response, "超过 30 位客户")


def test_counting_a_capped_list_reads_at_most_the_cap_plus_one_row(
    sales_rep, monkeypatch
):
    monkeypatch.setattr(pagination, "MAX_COUNT", 5)
    CustomerFactory.create_batch(12, owner=sales_rep)
    page = pagination.paginate(
        selectors.customer_list(user=sales_rep), page_number="1", per_page=2
    )
    assert page.paginator.bounded_count == 6
    assert page.paginator.count == 5  # the rows the pages show
    assert page.paginator.is_capped


# --- phone and ID searches stay out of URLs (ASVS V14.2.1) -------------------------------

DIGIT_RUN = re.compile(r"\d{7,}")


def test_a_phone_search_travels_as_a_token_and_pages_keep_it(as_sales, sales_rep):
    for n in range(30):
        add(sales_rep, f"号段客户{n:02d}", f"1390000{n:04d}")
    response = find(as_sales, "1390000", **{"HTTP_HX_REQUEST": "true"})
    assert len(listed(response)) == 25
    ((landed, status),) = response.redirect_chain
    assert status == 303 and landed.startswith(f"{LIST_URL}?s=")
    # Every address the page links to carries the token, never the digits.
    html = response.content.decode()
    links = re.findall(r'href="([^"]*)"', html)
    assert any("page=2" in link and "s=" in link for link in links)
    assert not [link for link in links if DIGIT_RUN.search(link)]
    page_two = next(link for link in links if "page=2" in link)
    assert len(listed(as_sales.get(LIST_URL + page_two.replace("&amp;", "&")))) == 5


def test_an_id_number_search_travels_as_a_token(as_sales, sales_rep):
    services.customer_create(
        by=sales_rep, data={"name": "有证客户"}, id_number="110105199001011232"
    )
    for query in ("11010519900101123X", "110105199001011232"):
        response = find(as_sales, query)
        assert response.status_code == 200 and response.redirect_chain, query


def test_name_searches_stay_in_the_address(as_sales, people):
    response = as_sales.post(LIST_URL, {"q": "张三", "sort": "name"})
    assert response.status_code == 303
    assert response["Location"] == f"{LIST_URL}?sort=name&q=%E5%BC%A0%E4%B8%89"


def test_a_phone_typed_into_the_address_is_moved_out_of_it(as_sales, people):
    response = as_sales.get(LIST_URL, {"q": "13812345678"}, follow=True)
    ((landed, _status),) = response.redirect_chain
    assert "13812345678" not in landed and "s=" in landed
    assert listed(response) == {"张三"}


def test_a_search_token_is_the_users_own(client, as_sales, people, teammate):
    response = find(as_sales, "13812345678")
    ((landed, _status),) = response.redirect_chain
    client.force_login(teammate)
    # Another session does not know the token: it searches nothing, lists everyone.
    assert listed(client.get(landed)) == set(people)


def test_the_export_link_carries_the_token_not_the_digits(client, manager, people):
    client.force_login(manager)
    response = find(client, "13812345678", **{"HTTP_HX_REQUEST": "true"})
    link = re.search(r'id="export-link"[^>]*href="([^"]+)"', response.content.decode())
    assert link and "s=" in link.group(1) and not DIGIT_RUN.search(link.group(1))
    confirm = client.get(link.group(1).replace("&amp;", "&"))
    assertContains(confirm, "将导出 1 位客户")


def test_the_pool_and_the_service_desk_searches_keep_phones_out_of_urls(
    client, service_agent, sales_rep, people
):
    services.pool_release(by=sales_rep, customer=people["张三"], reason="无意向")
    client.force_login(sales_rep)
    pool = find(client, "13812345678", url=reverse("customers:pool_list"))
    assertContains(pool, "张三")
    client.force_login(service_agent)
    picker = find(client, "13812345678", url=reverse("service:ticket_create"))
    assert [c.name for c in picker.context["customers"]] == ["张三"]
    queue = find(client, "13812345678", url=reverse("service:ticket_queue"))
    assert queue.status_code == 200
