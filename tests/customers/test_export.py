"""Customer export: the user's visible list, masked, neutralised, bounded and audited."""

from __future__ import annotations

import csv
import hashlib
import io

import openpyxl
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from crm.core import audit
from crm.core.models import AccessLog
from customers import services
from tests.factories import CustomerFactory


def _exports():
    """The audit log's rows of this kind (sign-ins and refusals are logged too)."""
    return AccessLog.objects.filter(action=audit.EXPORTED)


CONFIRM_URL = reverse("customers:export_confirm")
DOWNLOAD_URL = reverse("customers:export_download")
ID_ZHANG = "110105199001011232"


@pytest.fixture
def as_manager(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def customers(sales_rep, outsider, far_outsider):
    """Two customers in the manager's department, one in another department."""
    return {
        "mine": services.customer_create(
            by=sales_rep,
            data={"name": "张三", "stage": "lead", "tags": ["学区房"]},
            phone_numbers=["13800138000"],
            id_number=ID_ZHANG,
        ),
        "team_b": services.customer_create(
            by=outsider,
            data={"name": "李四", "stage": "prospect"},
            phone_numbers=["13900139000"],
        ),
        "far": services.customer_create(
            by=far_outsider, data={"name": "华南客户"}, phone_numbers=["13700137000"]
        ),
    }


def download_csv(client, **params: str) -> tuple[bytes, list[list[str]]]:
    response = client.get(DOWNLOAD_URL, {"format": "csv", **params})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    return body, list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def by_name(rows: list[list[str]]) -> dict[str, dict[str, str]]:
    header = rows[0]
    return {row[1]: dict(zip(header, row, strict=True)) for row in rows[1:]}


def test_csv_has_the_bom_and_only_customers_the_user_may_see(as_manager, customers):
    body, rows = download_csv(as_manager)
    assert body.startswith(b"\xef\xbb\xbf")
    assert rows[0][:3] == ["客户编号", "名称", "类型"]
    assert set(by_name(rows)) == {"张三", "李四"}  # not the other department's


def test_a_salesperson_sees_only_their_team_in_the_list_and_may_not_export(
    client, sales_rep, customers
):
    client.force_login(sales_rep)
    assert client.get(CONFIRM_URL).status_code == 403
    assert client.get(DOWNLOAD_URL, {"format": "csv"}).status_code == 403
    assert client.get(DOWNLOAD_URL, {"format": "xlsx"}).status_code == 403
    assert not _exports().exists()
    list_page = client.get(reverse("customers:customer_list"))
    assertNotContains(list_page, 'data-testid="export-link"')
    assertNotContains(list_page, 'data-testid="import-link"')


@pytest.mark.parametrize("persona", ["service_agent", "readonly_user", "far_outsider"])
def test_other_roles_get_403(client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(CONFIRM_URL).status_code == 403
    assert client.get(DOWNLOAD_URL).status_code == 403


def test_phones_are_masked_for_a_role_without_pii_rights(
    as_manager, settings, customers
):
    settings.KEHU_UNMASKED_ROLES = ["sales"]  # managers may not see personal data
    body, rows = download_csv(as_manager)
    zhang = by_name(rows)["张三"]
    assert zhang["电话"] == "138****8000"
    assert zhang["身份证号"] == "1101**********1232"
    assert b"13800138000" not in body and ID_ZHANG.encode() not in body
    assertContains(as_manager.get(CONFIRM_URL), "电话和身份证号均脱敏导出")


def test_phones_are_whole_for_a_role_with_pii_rights_but_id_numbers_never(
    as_manager, customers
):
    body, rows = download_csv(as_manager)
    zhang = by_name(rows)["张三"]
    assert zhang["电话"] == "13800138000"
    assert zhang["身份证号"] == "1101**********1232"
    assert ID_ZHANG.encode() not in body
    assert (zhang["负责人"], zhang["阶段"], zhang["标签"]) == (
        "sales_a",
        "潜在",
        "学区房",
    )


@pytest.fixture
def formula_customer(manager):
    return CustomerFactory(
        name="=cmd|' /C calc'!A0",
        owner=manager,
        address="+1+1",
        wechat_id="@SUM(A1)",
        notes="-2+3",
        city="\tcity",
    )


def test_formula_cells_are_neutralised_in_csv(as_manager, formula_customer):
    _body, rows = download_csv(as_manager)
    row = by_name(rows)["'=cmd|' /C calc'!A0"]
    assert (row["地址"], row["微信号"], row["备注"], row["城市"]) == (
        "'+1+1",
        "'@SUM(A1)",
        "'-2+3",
        "'\tcity",
    )


def test_formula_cells_are_neutralised_in_xlsx(as_manager, formula_customer):
    response = as_manager.get(DOWNLOAD_URL, {"format": "xlsx"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml"
    )
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    rows = [
        ["" if v is None else str(v) for v in row]
        for row in sheet.active.iter_rows(values_only=True)
    ]
    row = by_name(rows)["'=cmd|' /C calc'!A0"]
    assert (row["地址"], row["微信号"], row["备注"]) == ("'+1+1", "'@SUM(A1)", "'-2+3")
    # No cell of the workbook is a formula.
    assert all(
        cell.data_type != "f" for line in sheet.active.iter_rows() for cell in line
    )


def test_xlsx_holds_the_same_visible_rows(as_manager, customers):
    response = as_manager.get(DOWNLOAD_URL, {"format": "xlsx"})
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    rows = [
        [str(v or "") for v in row] for row in sheet.active.iter_rows(values_only=True)
    ]
    assert set(by_name(rows)) == {"张三", "李四"}
    assert by_name(rows)["张三"]["电话"] == "13800138000"


def test_every_export_is_audited_with_its_filters_and_row_count(
    as_manager, manager, customers
):
    body, rows = download_csv(as_manager, stage="lead", q="张")
    assert set(by_name(rows)) == {"张三"}
    xlsx = as_manager.get(DOWNLOAD_URL, {"format": "xlsx"})
    xlsx_body = b"".join(xlsx.streaming_content)
    csv_log, xlsx_log = _exports().order_by("pk")
    assert (csv_log.user, csv_log.action, csv_log.row_count) == (manager, "export", 1)
    # The log names the very file handed out: its SHA-256, then format and filters.
    assert csv_log.detail.startswith(f"sha256={hashlib.sha256(body).hexdigest()}; csv;")
    assert "q=张" in csv_log.detail and "stage=lead" in csv_log.detail
    assert xlsx_log.row_count == 2
    assert xlsx_log.detail.startswith(
        f"sha256={hashlib.sha256(xlsx_body).hexdigest()}; xlsx;"
    )


def test_export_page_counts_the_filtered_customers_and_keeps_the_filters(
    as_manager, customers
):
    page = as_manager.get(CONFIRM_URL, {"stage": "prospect", "page": "3"})
    assertContains(page, "将导出 1 位客户")
    assertContains(page, f"{DOWNLOAD_URL}?stage=prospect&amp;format=csv")
    assertContains(page, '<span data-testid="export-filters">阶段：意向</span>')
    assertNotContains(page, 'data-testid="export-capped"')
    assert not _exports().exists()  # counting is not exporting


def test_export_is_capped_and_says_so(as_manager, manager, settings):
    settings.KEHU_EXPORT_MAX_ROWS = 2
    for n in range(3):
        CustomerFactory(name=f"客户{n}", owner=manager)
    page = as_manager.get(CONFIRM_URL)
    assertContains(page, 'data-testid="export-capped"')
    assertContains(page, "只导出前 2 位")
    _body, rows = download_csv(as_manager)
    assert len(rows) == 3  # the header and two customers
    assert _exports().get().row_count == 2


def test_the_list_page_offers_export_and_import_to_a_manager(as_manager, customers):
    page = as_manager.get(reverse("customers:customer_list"), {"stage": "lead"})
    assertContains(page, 'data-testid="export-link"')
    assertContains(page, f'href="{CONFIRM_URL}?stage=lead"')
    assertContains(page, 'data-testid="import-link"')


def test_export_query_count_does_not_grow_with_rows(as_manager, manager):
    counts = []
    for total in (3, 40):
        for _ in range(total):
            CustomerFactory(owner=manager)
        with CaptureQueriesContext(connection) as queries:
            download_csv(as_manager)
        counts.append(len(queries))
    assert counts[0] == counts[1]


@pytest.mark.parametrize(
    "params",
    [{"q": "张" * 101}, {"days_since_contact": "abc"}, {"q": "a\x00b"}, {"owner": "x"}],
)
def test_invalid_filters_export_nothing_rather_than_everyone(
    as_manager, customers, params
):
    page = as_manager.get(CONFIRM_URL, params)
    assert page.status_code == 400
    assertContains(page, "筛选条件无效", status_code=400)
    assertNotContains(page, "export-csv", status_code=400)
    response = as_manager.get(DOWNLOAD_URL, {"format": "csv", **params})
    assert response.status_code == 400
    assert "张三".encode() not in response.content
    assert not _exports().exists()
