"""S9: hostile uploads through the real pages (ticket attachments, customer imports).

What tests/service and tests/customers already check (wrong extension, wrong magic
bytes, random stored name, download headers of one PDF) is not repeated; here the
sizes at the limit, hostile names (path, NUL, 300 characters, Chinese, RTL override),
polyglots and SVG, and the rule that no stored file is ever served inline as a page.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from openpyxl.utils import get_column_letter
from pytest_django.asserts import assertContains

from customers.models import ImportJob
from service import services
from service.models import TicketAttachment

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
LIMIT = services.MAX_UPLOAD_BYTES
RTL = "\u202e"
# Characters that change how a name is displayed or where it points.
HOSTILE_CHARACTERS = {"/", "\\", "\x00", RTL, "\u202d", "\u200f", "\u2066", "\u2067"}


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def ticket(service_agent, sales_rep):
    from customers import services as customer_services

    customer = customer_services.customer_create(
        by=sales_rep, data={"name": "上传测试"}
    )
    return services.ticket_create(
        by=service_agent,
        customer=customer,
        ticket_type="repair",
        channel="hotline",
        subject="上传测试",
        description="附件",
    )


@pytest.fixture
def agent(service_agent) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(service_agent)
    return client


def _upload(client: Client, ticket, name: str, content: bytes):  # noqa: ANN001, ANN202
    ticket.refresh_from_db()
    return client.post(
        reverse("service:attachment_upload", args=[ticket.reference]),
        {"version": ticket.version, "files": [SimpleUploadedFile(name, content)]},
    )


def _served_safely(client: Client, attachment: TicketAttachment) -> None:
    url = reverse("service:attachment_download", args=[attachment.pk])
    response = client.get(url)
    assert response.status_code == 200
    b"".join(response.streaming_content)
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    served_as = response["Content-Type"].split(";")[0].strip().lower()
    assert served_as not in {"text/html", "image/svg+xml", "application/xhtml+xml"}
    assert not served_as.startswith("text/")
    assert RTL not in response["Content-Disposition"]


def _stored_safely(attachment: TicketAttachment, media: Path) -> None:
    path = Path(attachment.file.path).resolve()
    assert path.is_relative_to(media.resolve())
    static_roots = [Path(settings.STATIC_ROOT), *map(Path, settings.STATICFILES_DIRS)]
    assert not any(path.is_relative_to(root.resolve()) for root in static_roots)
    stem = path.stem
    assert len(stem) == 32 and all(c in "0123456789abcdef" for c in stem)
    assert not HOSTILE_CHARACTERS & set(attachment.original_name)
    assert 0 < len(attachment.original_name) <= 200


@pytest.mark.parametrize(
    "name",
    [
        "../../x.png",
        "..\\..\\windows\\x.png",
        "bad\x00name.png",
        "长" * 296 + ".png",
        "现场照片（客厅）.png",
        f"invoice{RTL}gnp.png",
        f"{RTL}photo.png",
    ],
    ids=["dotdot", "backslashes", "nul", "300-chars", "chinese", "rtl", "rtl-first"],
)
def test_hostile_names_are_stored_under_random_names_and_served_as_attachments(
    agent, ticket, media, name
):
    response = _upload(agent, ticket, name, PNG)
    # A good image with a bad name is accepted; the name is cleaned, never used as a path.
    assert response.status_code == 302, response.status_code
    attachment = TicketAttachment.objects.get()
    _stored_safely(attachment, media)
    _served_safely(agent, attachment)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.png", b""),
        ("page.png", b"<html><script>alert(1)</script></html>"),
        ("page.html", b"<html><script>alert(1)</script></html>"),
        ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>1</script>'),
        ("drawing.png", b'<svg xmlns="http://www.w3.org/2000/svg"><script>1</script>'),
        ("evil.exe", b"MZ" + b"\x00" * 64),
        (f"evil{RTL}gnp.exe", b"MZ" + b"\x00" * 64),
    ],
    ids=["empty", "html-as-png", "html", "svg", "svg-as-png", "exe", "rtl-exe"],
)
def test_bad_files_are_refused_with_an_error(agent, ticket, media, name, content):
    response = _upload(agent, ticket, name, content)
    assert response.status_code == 400
    assert "alert-danger" in response.text or "invalid-feedback" in response.text
    assert not TicketAttachment.objects.exists()
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))


def test_a_png_html_polyglot_is_only_ever_downloaded(agent, ticket, media):
    polyglot = PNG + b"<html><script>alert(document.cookie)</script></html>"
    assert _upload(agent, ticket, "poly.png", polyglot).status_code == 302
    attachment = TicketAttachment.objects.get()
    assert attachment.content_type == "image/png"
    _stored_safely(attachment, media)
    _served_safely(agent, attachment)


def test_exactly_the_limit_is_accepted_and_one_byte_more_refused(agent, ticket, media):
    at_limit = PNG + b"\x00" * (LIMIT - len(PNG))
    assert _upload(agent, ticket, "big.png", at_limit).status_code == 302
    attachment = TicketAttachment.objects.get()
    assert attachment.size == LIMIT
    response = _upload(agent, ticket, "bigger.png", at_limit + b"\x00")
    assert response.status_code == 400
    assert "10 MB" in response.text
    assert TicketAttachment.objects.count() == 1


def test_no_stored_attachment_is_served_inline(agent, ticket, media):
    """Whatever got stored, by whatever type: the download view never renders it."""
    for name, content in (
        ("a.png", PNG),
        ("b.jpg", b"\xff\xd8\xff" + b"\x00" * 16),
        ("c.pdf", b"%PDF-1.4 <html><script>1</script>"),
        ("d.webp", b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 16),
    ):
        assert _upload(agent, ticket, name, content).status_code == 302, name
    attachments = list(TicketAttachment.objects.all())
    assert len(attachments) == 4
    for attachment in attachments:
        _served_safely(agent, attachment)


# --- customer imports --------------------------------------------------------------------


def _csv(rows: list[list[str]]) -> bytes:
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return text.getvalue().encode("utf-8-sig")


@pytest.fixture
def importer(manager) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(manager)
    return client


@pytest.mark.parametrize(
    "name",
    [
        "../../客户.csv",
        "bad\x00name.csv",
        "名" * 296 + ".csv",
        f"list{RTL}vsc.csv",
    ],
    ids=["dotdot", "nul", "300-chars", "rtl"],
)
def test_import_names_never_reach_the_file_system(importer, media, name):
    content = _csv([["名称"], ["导入甲"]])
    response = importer.post(
        reverse("customers:import_upload"), {"file": SimpleUploadedFile(name, content)}
    )
    assert response.status_code == 302
    job = ImportJob.objects.get()
    stored = Path(job.file.path).resolve()
    assert stored.is_relative_to(media.resolve())
    assert stored.parent.name == "imports" and stored.suffix == ".csv"
    assert "名" not in stored.name and "客户" not in stored.name
    assert not HOSTILE_CHARACTERS & set(job.original_name)
    assert len(job.original_name) <= 200


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.csv", b""),
        ("page.csv", b"<html><script>alert(1)</script></html>"),
        ("page.html", b"<html><script>alert(1)</script></html>"),
        ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>1</script>'),
    ],
    ids=["empty", "html-as-csv", "html", "svg"],
)
def test_bad_import_files_are_refused_with_an_error(importer, media, name, content):
    response = importer.post(
        reverse("customers:import_upload"), {"file": SimpleUploadedFile(name, content)}
    )
    assert response.status_code == 200
    assert "invalid-feedback" in response.text or "alert-danger" in response.text
    assert not ImportJob.objects.exists()


def test_import_at_the_size_limit_and_one_byte_over(importer, media, settings):
    content = _csv([["名称"], ["导入乙"]])
    settings.KEHU_IMPORT_MAX_BYTES = len(content)
    url = reverse("customers:import_upload")
    at_limit = importer.post(url, {"file": SimpleUploadedFile("a.csv", content)})
    assert at_limit.status_code == 302
    over = importer.post(url, {"file": SimpleUploadedFile("b.csv", content + b"\n")})
    assert over.status_code == 200
    assert ImportJob.objects.count() == 1


# --- spreadsheets bounded before they are parsed (issue 11, finding 5) -----------------
# Hand-written .xlsx packages: the smallest set of parts openpyxl opens, so that each
# test controls exactly what the zip directory, the dimension and the rows claim.

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
SPREADSHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml"
HEADER_ROW = '<row r="1"><c r="A1" t="inlineStr"><is><t>名称</t></is></c></row>'


def _cell(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def _sheet(rows: str, *, dimension: str | None = "A1:A2") -> str:
    declared = f'<dimension ref="{dimension}"/>' if dimension else ""
    return (
        f'<worksheet xmlns="{MAIN}">{declared}<sheetData>{rows}</sheetData></worksheet>'
    )


def _xlsx(
    sheet: str,
    *,
    shared_strings: bytes | None = None,
    sheets: int = 1,
    extra_parts: int = 0,
    workbook: bool = True,
) -> bytes:
    """An .xlsx of one worksheet (listed `sheets` times), deflated."""
    overrides = [
        ("/xl/workbook.xml", f"{SPREADSHEET}.sheet.main+xml"),
        ("/xl/worksheets/sheet1.xml", f"{SPREADSHEET}.worksheet+xml"),
    ]
    workbook_rels = [("rId1", "worksheet", "worksheets/sheet1.xml")]
    if shared_strings is not None:
        overrides.append(("/xl/sharedStrings.xml", f"{SPREADSHEET}.sharedStrings+xml"))
        workbook_rels.append(("rId2", "sharedStrings", "sharedStrings.xml"))
    content_types = (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        f'<Default Extension="rels" ContentType="{PACKAGE_REL[:-14]}.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        + "".join(f'<Override PartName="{p}" ContentType="{t}"/>' for p, t in overrides)
        + "</Types>"
    )
    sheet_list = "".join(
        f'<sheet name="客户{n}" sheetId="{n + 1}" r:id="rId1"/>' for n in range(sheets)
    )
    parts = {
        "[Content_Types].xml": content_types,
        "_rels/.rels": f'<Relationships xmlns="{PACKAGE_REL}"><Relationship Id="rId1" '
        f'Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{PACKAGE_REL}">'
        + "".join(
            f'<Relationship Id="{i}" Type="{REL}/{kind}" Target="{target}"/>'
            for i, kind, target in workbook_rels
        )
        + "</Relationships>",
        "xl/worksheets/sheet1.xml": sheet,
    }
    if workbook:
        parts["xl/workbook.xml"] = (
            f'<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets>{sheet_list}</sheets>'
            "</workbook>"
        )
    if shared_strings is not None:
        parts["xl/sharedStrings.xml"] = shared_strings
    for n in range(extra_parts):
        parts[f"docProps/extra{n}.xml"] = ""
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return data.getvalue()


def _shared_strings(*texts: bytes) -> bytes:
    items = b"".join(b"<si><t>" + text + b"</t></si>" for text in texts)
    return f'<sst xmlns="{MAIN}">'.encode() + items + b"</sst>"


FOUR_LETTERS = bytes(b"abcd"[byte % 4] for byte in range(256))


def _letters(size: int) -> bytes:
    """`size` random letters of four: deflate packs them about 4 to 1, not 1,000."""
    return os.urandom(size).translate(FOUR_LETTERS)


def _post_import(client: Client, name: str, content: bytes):  # noqa: ANN202
    return client.post(
        reverse("customers:import_upload"), {"file": SimpleUploadedFile(name, content)}
    )


def _refused(response, message: str) -> None:  # noqa: ANN001
    assert response.status_code == 200
    assertContains(response, message)
    assertContains(response, 'data-testid="import-upload"')
    assert not ImportJob.objects.exists()


ONE_ROW = HEADER_ROW + '<row r="2">' + _cell("A2", "张三") + "</row>"
# The sheet as far as its dimension: an unclosed row follows, which openpyxl would
# report as damage ("已损坏") had it read the sheet.
TRUNCATED = HEADER_ROW + '<row r="2"><c r="A2" t="inlineStr"><is><t>张'


@pytest.mark.parametrize("is_truncated", [False, True], ids=["whole", "truncated"])
@pytest.mark.parametrize(
    "dimension",
    # The probe's 1.9 KB file (23 s per read); all Excel's rows; 100 columns of 50,000
    # rows (5,000,000 cells, over 2,000,000).
    ["A1:XFD20000", "A1:B1048576", "A1:CV50000"],
)
def test_a_sheet_declaring_a_huge_range_is_refused_before_its_rows_are_read(
    importer, media, dimension, is_truncated
):
    # One cell in the far corner, as the probe's file: openpyxl fills every row
    # between with as many cells as the dimension has columns.
    corner = dimension.split(":")[1]
    last_row = corner.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    rows = (
        TRUNCATED
        if is_truncated
        else (ONE_ROW + f'<row r="{last_row}">' + _cell(corner, "尾") + "</row>")
    )
    content = _xlsx(_sheet(rows, dimension=dimension))
    assert len(content) < 2000
    _refused(_post_import(importer, "range.xlsx", content), "表格范围过大")


def test_a_sheet_within_its_bounds_is_accepted_whatever_it_declares(importer, media):
    rows = ONE_ROW + '<row r="3">' + _cell("B3", "13800138000") + "</row>"
    for dimension in ["A1:B3", "A1", None]:  # exact, too small, none
        response = _post_import(
            importer, "ok.xlsx", _xlsx(_sheet(rows, dimension=dimension))
        )
        assert response.status_code == 302, dimension
    assert ImportJob.objects.count() == 3
    # Read to the rows the sheet holds: the second data row counts even where the
    # dimension said A1.
    assert set(ImportJob.objects.values_list("total_rows", flat=True)) == {2}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        # A row far below the rest: openpyxl yields an empty row for each one skipped.
        (ONE_ROW + '<row r="1048576">' + _cell("A1048576", "李四") + "</row>",
         "文件超过 100,001 行（含空行）"),
        # A cell in Excel's last column pads its row to 16,384 cells.
        (ONE_ROW + '<row r="3">' + _cell("XFD3", "王五") + "</row>",
         "第 3 行超过 100 列"),
        # Longer than Excel allows in a cell.
        (ONE_ROW + '<row r="3">' + _cell("A3", "长" * 40_000) + "</row>",
         "第 3 行有单元格超过 32,767 个字符"),
    ],
    ids=["far-row", "far-column", "long-cell"],
)  # fmt: skip
def test_a_sheet_that_understates_its_size_is_refused_at_the_first_row_past_a_bound(
    importer, media, rows, message
):
    content = _xlsx(_sheet(rows, dimension="A1:A2"))
    _refused(_post_import(importer, "lying.xlsx", content), message)


def test_more_cells_than_the_bound_are_refused_while_reading(importer, media, settings):
    settings.KEHU_IMPORT_MAX_ROWS = 10  # at most 400 cells
    row = "".join(_cell(f"{get_column_letter(c)}{{n}}", "x") for c in range(1, 61))
    rows = HEADER_ROW + "".join(
        f'<row r="{n}">{row.format(n=n)}</row>' for n in range(2, 9)
    )  # 7 rows of 60 cells
    content = _xlsx(_sheet(rows, dimension=None))
    _refused(_post_import(importer, "cells.xlsx", content), "表格超过 400 个单元格")


def test_a_shared_string_bomb_is_refused_before_openpyxl_opens_the_file(
    importer, media
):
    """The probe's file: 52 KB holding one 50 MB shared string (100 MB more in the web
    process). Its workbook part is left out: openpyxl would refuse that file as
    unreadable ("无法打开"), so the answer shows the zip directory alone decided."""
    bomb = _shared_strings(b"x" * 50_000_000)
    sheet = _sheet(HEADER_ROW + '<row r="2"><c r="A2" t="s"><v>0</v></c></row>')
    for workbook in (True, False):
        content = _xlsx(sheet, shared_strings=bomb, workbook=workbook)
        assert len(content) < 60_000
        _refused(
            _post_import(importer, "bomb.xlsx", content), "压缩比异常（超过 100 倍）"
        )


def test_shared_strings_and_unpacked_size_are_bounded_without_a_bomb(
    importer, media, settings
):
    settings.KEHU_IMPORT_MAX_BYTES = 1024 * 1024  # parts 2 MB, all parts 10 MB
    sheet = _sheet(HEADER_ROW + '<row r="2"><c r="A2" t="s"><v>0</v></c></row>')
    strings = _shared_strings(_letters(3 * 1024 * 1024))  # about 4 to 1
    content = _xlsx(sheet, shared_strings=strings)
    assert len(content) < 1024 * 1024
    _refused(_post_import(importer, "strings.xlsx", content), "文字内容超过 2 MB")
    # A sheet's XML is streamed, so only the total bounds it: 40,000 rows of five
    # columns are 12 MB, deflated about 30 to 1.
    row = '<row r="{n}">' + "".join(_cell(f"{c}{{n}}", f"{c}{{n}}") for c in "ABCDE")
    rows = HEADER_ROW + "".join(row.format(n=n) + "</row>" for n in range(2, 40_002))
    content = _xlsx(_sheet(rows, dimension=None))
    assert len(rows) > 10 * 1024 * 1024 and len(content) < 1024 * 1024
    _refused(_post_import(importer, "rows.xlsx", content), "解压后超过 10 MB")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"extra_parts": 2_000}, "包含的部件过多"),
        ({"sheets": 300}, "工作表超过 255 个"),
    ],
    ids=["parts", "sheets"],
)
def test_a_package_of_too_many_parts_or_sheets_is_refused(
    importer, media, options, message
):
    content = _xlsx(_sheet(ONE_ROW), **options)
    _refused(_post_import(importer, "parts.xlsx", content), message)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # 200,000 blank lines after the header: the csv module reads each one.
        ("名称\n" + "\n" * 200_000, "文件超过 100,001 行（含空行）"),
        ("名称\r" + "\r" * 200_000, "文件超过 100,001 行（含空行）"),
        # One line of 200,000 characters (a field of 131,073 is the csv module's own
        # limit, in English).
        ("名称\n" + "甲" * 200_000 + "\n", "第 2 行超过 100,000 个字符"),
        # 20 MB of commas would be 20 million cells: 150 columns already say it.
        ("名称" + "," * 150 + "\n张三\n", "第 1 行超过 100 列"),
        ("名称\n张三" + "," * 150 + "\n", "第 2 行超过 100 列"),
    ],
    ids=["blank-lines", "cr-lines", "long-line", "wide-header", "wide-row"],
)
def test_csv_lines_and_columns_are_bounded(importer, media, content, message):
    _refused(_post_import(importer, "big.csv", content.encode()), message)
