"""Customer export to CSV and XLSX: the user's own list, masked, bounded and audited.

The rows come from the list page's selector, so an export never holds a customer the
user could not open. Phones are masked unless the role may see personal data; ID
numbers are always masked. Every export writes an AccessLog row before the first byte
leaves. Cells a spreadsheet would run as a formula get a leading apostrophe (CSV/
formula injection, OWASP).
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.core.models import AccessLog
from customers import masking
from customers.models import Customer

EXPORT_PERM = "customers.export_customer"
CHUNK_SIZE = 2000
# Characters that make Excel, WPS or LibreOffice read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
UTF8_BOM = "\ufeff"


def max_rows() -> int:
    return getattr(settings, "KEHU_EXPORT_MAX_ROWS", 50_000)


def neutralise(value: str) -> str:
    """'=cmd|...' -> "'=cmd|...": shown as text, never run as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def headers() -> list[str]:
    # The import accepts these same headers, so an export can be edited and re-imported.
    return [
        _("客户编号"),
        _("名称"),
        _("类型"),
        _("阶段"),
        _("等级"),
        _("重点客户"),
        _("来源"),
        _("电话"),
        _("微信号"),
        _("邮箱"),
        _("省份"),
        _("城市"),
        _("区县"),
        _("地址"),
        _("标签"),
        _("身份证号"),
        _("负责人"),
        _("团队"),
        _("最近联系"),
        _("创建时间"),
        _("备注"),
    ]


def _when(value: Any) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


class _Labels:
    """Choice labels translated once per export, not once per cell."""

    def __init__(self) -> None:
        self.kind = {v: str(label) for v, label in Customer.Kind.choices}
        self.stage = {v: str(label) for v, label in Customer.Stage.choices}
        self.source = {v: str(label) for v, label in Customer.Source.choices}
        self.yes, self.no, self.pool = _("是"), _("否"), _("公海")


def _row(customer: Customer, *, can_see_pii: bool, labels: _Labels) -> list[str]:
    return [
        str(customer.pk),
        customer.name,
        labels.kind.get(customer.kind, customer.kind),
        labels.stage.get(customer.stage, customer.stage),
        customer.tier,
        labels.yes if customer.is_key_account else labels.no,
        labels.source.get(customer.source, customer.source),
        customer.phone if can_see_pii else masking.mask_phone(customer.phone),
        customer.wechat_id,
        customer.email,
        customer.province,
        customer.city,
        customer.district,
        customer.address,
        "、".join(customer.tags),
        # Always the stored mask: no export carries a full ID number.
        customer.id_number_masked,
        customer.owner.username if customer.owner else labels.pool,
        customer.team.name if customer.team else "",
        _when(customer.last_contacted_at),
        _when(customer.created_at),
        customer.notes,
    ]


@dataclass
class Export:
    rows: Iterator[list[str]]
    row_count: int
    is_capped: bool


def count_bounded(customers: QuerySet) -> tuple[int, bool]:
    """(rows an export would hold, whether the cap cut it): one LIMITed COUNT."""
    limit = max_rows()
    count = customers[: limit + 1].count()
    return min(count, limit), count > limit


def customers_export(
    *, by: Any, customers: QuerySet, file_format: str, description: str
) -> Export:
    """Audit the export, then hand back its rows (header first) to be streamed.

    `customers` must already be the user's visible list (selectors.customer_list).
    """
    if not by.has_perm(EXPORT_PERM):
        raise PermissionDenied
    row_count, is_capped = count_bounded(customers)
    AccessLog.objects.create(
        user=by,
        action="export",
        object_type="customer",
        row_count=row_count,
        detail=f"{file_format}; {description}"[:300],
    )
    can_see_pii = masking.can_see_pii(by)
    labels = _Labels()

    def rows() -> Iterator[list[str]]:
        yield headers()
        for customer in customers[:row_count].iterator(chunk_size=CHUNK_SIZE):
            yield _row(customer, can_see_pii=can_see_pii, labels=labels)

    return Export(rows=rows(), row_count=row_count, is_capped=is_capped)


class _Echo:
    """A file-like whose write() returns the line, for csv.writer in a generator."""

    def write(self, value: str) -> str:
        return value


def csv_chunks(
    rows: Iterable[list[str]], *, lines_per_chunk: int = 500
) -> Iterator[str]:
    """CSV text in chunks, starting with the BOM Excel needs to read UTF-8 Chinese."""
    writer = csv.writer(_Echo())
    buffer = [UTF8_BOM]
    for row in rows:
        buffer.append(writer.writerow([neutralise(cell) for cell in row]))
        if len(buffer) >= lines_per_chunk:
            yield "".join(buffer)
            buffer = []
    if buffer:
        yield "".join(buffer)


def xlsx_file(rows: Iterable[list[str]], *, title: str) -> IO[bytes]:
    """An .xlsx in a temporary file; openpyxl's write-only mode keeps memory flat."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    for row in rows:
        # Control characters first: removing one must not uncover a leading "=".
        sheet.append([neutralise(ILLEGAL_CHARACTERS_RE.sub("", cell)) for cell in row])
    handle = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it
    workbook.save(handle)
    handle.seek(0)
    return handle
