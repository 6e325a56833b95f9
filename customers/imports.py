"""Customer import from CSV and XLSX: read, validate into a preview, then import.

The flow, each step a service:
1. `inspect_upload` (called by the upload form) checks the file can be read and has a
   name column; `import_job_create` stores it under MEDIA_ROOT/imports with a random
   name and queues validation.
2. `import_job_validate` (task) reads every row into an ImportRow, valid or with its
   reasons: bad phone or ID number, missing name, a phone or ID number repeated in the
   file or already held by an existing customer (the same unique indexes
   `customer_create` relies on, looked up in batches).
3. The user reads the preview and either confirms (`import_job_confirm`) or imports
   nothing (`import_job_cancel`).
4. `import_job_execute` (task) creates the valid rows in chunks of IMPORT_CHUNK: one
   transaction per chunk locks its rows, checks their phones and ID numbers against the
   customers created since the preview (one query each), bulk-inserts the customers,
   their phones and profiles built by `customers.builder` (as `services.customer_create`
   builds them), and marks the rows done, so a rerun, a duplicated task or a worker
   killed mid-file never imports a row twice and carries on from the first row still
   waiting. Should a bulk insert still collide with a concurrent create, that chunk
   goes row by row through `services.customer_create`.

Owner rule (shown on the upload and preview pages): an empty 负责人 cell makes the
importing user the owner; a username of a salesperson or manager the importer may
assign to (selectors.owner_choices) makes that person the owner; 公海 puts the customer
in the public pool; any other name falls back to the importer, with a warning on the
row in the preview.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import itertools
import re
import struct
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import PurePath
from typing import IO, Any

import pghistory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.core import audit
from crm.core.db import copy_create
from crm.scheduler import services as scheduler
from customers import builder, identity, permissions, phones, selectors, services
from customers.models import (
    Customer,
    CustomerPhone,
    ImportJob,
    ImportRow,
)
from customers.search import FULL_WIDTH

IMPORT_PERM = "customers.import_customer"
EXTENSIONS = {".csv": ImportJob.Format.CSV, ".xlsx": ImportJob.Format.XLSX}
VALIDATE_BATCH = 500
# Rows created in one transaction (and one progress update) by import_job_execute.
IMPORT_CHUNK = 500
MAX_PAUSE = 5.0
LEASE = timedelta(minutes=2)
# A queued job no worker has taken for this long is queued again (broker restarted).
REQUEUE_AFTER = timedelta(seconds=60)
PREVIEW_ERRORS = 200
PREVIEW_VALID = 20

# field -> accepted headers (compared after _header_key); Chinese first, as Excel shows.
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("名称", "姓名", "客户名称", "客户姓名", "name"),
    "phone": ("电话", "手机", "手机号", "手机号码", "电话号码", "联系电话", "phone"),
    "kind": ("类型", "客户类型", "kind"),
    "stage": ("阶段", "客户阶段", "stage"),
    "tier": ("等级", "价值等级", "客户等级", "tier"),
    "source": ("来源", "来源渠道", "source"),
    "is_key_account": ("重点客户", "is_key_account"),
    "is_organization": ("是机构", "机构", "is_organization"),
    "province": ("省份", "省", "province"),
    "city": ("城市", "市", "city"),
    "district": ("区县", "区", "县", "district"),
    "address": ("地址", "详细地址", "address"),
    "wechat_id": ("微信号", "微信", "wechat_id", "wechat"),
    "email": ("邮箱", "电子邮箱", "email"),
    "tags": ("标签", "tags"),
    "id_number": ("身份证号", "身份证", "身份证号码", "id_number"),
    "notes": ("备注", "notes"),
    "owner": ("负责人", "owner"),
    # A migration's columns: the record's id in the other system (a second import of
    # the file updates the customers it created), which system that is, and a
    # person's organisation by name or by its id in that system.
    "external_id": ("外部编号", "原系统编号", "external_id"),
    "external_source": ("来源系统", "source_system", "external_source"),
    "organization": ("所属机构", "所属公司", "organization", "company"),
    "organization_external_id": (
        "所属机构编号",
        "所属公司编号",
        "organization_external_id",
        "company_id",
    ),
}
# The fields whose invalid value may, if the preview says so, be left out of a row
# that is then kept and flagged for review (Customer.review_flags), not refused.
FALLBACK_FIELDS = ("phone", "email", "id_number")
KEEP, REFUSE = "keep", "refuse"
# What the upload page lists and the template file contains.
TEMPLATE_HEADERS = [
    ("名称", gettext_lazy("必填；个人或机构名称")),
    ("电话", gettext_lazy("手机或座机，多个用逗号分隔")),
    ("类型", gettext_lazy("业主、企业、分销商、经销商、批发商、代理商、合作伙伴")),
    ("阶段", gettext_lazy("潜在、意向、成交、沉睡、流失")),
    ("等级", gettext_lazy("A、B、C、D")),
    ("省份", ""),
    ("城市", ""),
    ("区县", ""),
    ("地址", ""),
    ("微信号", ""),
    ("邮箱", ""),
    ("标签", gettext_lazy("多个用逗号或顿号分隔")),
    ("身份证号", gettext_lazy("18 位，含校验位")),
    ("备注", ""),
    ("负责人", gettext_lazy("用户名；留空为导入人，“公海”为放入公海")),
    ("外部编号", gettext_lazy("原系统中的编号；再次导入同一编号时更新该客户")),
    ("来源系统", gettext_lazy("原系统名称，与外部编号一起识别客户；可留空")),
    ("所属机构", gettext_lazy("个人所属机构的名称；没有则新建")),
    ("所属机构编号", gettext_lazy("所属机构在原系统中的外部编号")),
]
TEMPLATE_EXAMPLE = [
    "张三",
    "13800138000",
    "业主",
    "潜在",
    "B",
    "广东省",
    "深圳市",
    "南山区",
    "科技园路 1 号",
    "zhangsan_wx",
    "zhangsan@example.com",
    "老带新、学区房",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
]
CHOICE_FIELDS = {
    "kind": Customer.Kind,
    "stage": Customer.Stage,
    "tier": Customer.Tier,
    "source": Customer.Source,
}
BOOLEAN_FIELDS = ("is_key_account", "is_organization")
TEXT_FIELDS = (
    "province",
    "city",
    "district",
    "address",
    "wechat_id",
    "email",
    "notes",
)
TRUE_WORDS = {"是", "y", "yes", "true", "1", "√", "✓", "重点"}
FALSE_WORDS = {"否", "n", "no", "false", "0", "×", "x", ""}
POOL_WORDS = {"公海", "pool"}
LIST_SEPARATORS = re.compile(r"[,，、;；/|]+")


def max_upload_bytes() -> int:
    """KEHU_IMPORT_MAX_BYTES (environment; README's settings list)."""
    return getattr(settings, "KEHU_IMPORT_MAX_BYTES", 20 * 1024 * 1024)


def max_rows() -> int:
    """KEHU_IMPORT_MAX_ROWS (environment): the data rows one file may hold. No fixed
    cap: files are read row by row, so a migration sets it as high as it needs."""
    return getattr(settings, "KEHU_IMPORT_MAX_ROWS", 50_000)


def retention_days() -> int:
    """KEHU_IMPORT_RETENTION_DAYS (environment): an import's rows and file are purged
    this many days after it finished; its summary (the job's counts) stays."""
    return getattr(settings, "KEHU_IMPORT_RETENTION_DAYS", 30)


def pause_ratio() -> float:
    """Seconds of pause after a full batch (validation) or chunk (import) per second
    of CPU it took in this process.

    Batches and chunks keep a core busy (Python, and PostgreSQL's index updates); on a
    small machine the pauses leave CPU to the web workers (L3 in docs/reliability.md).
    0 runs flat out.
    """
    return getattr(settings, "KEHU_IMPORT_PAUSE_RATIO", 1.0)


def _pause(started: float) -> None:
    """Pause after a batch or chunk begun at `started` (time.process_time()), outside
    its transaction; MAX_PAUSE keeps it well within the job's lease.

    The CPU time of this process, not the time on the clock: on a machine busy with
    other work a chunk takes longer without using more CPU, and the pause would make
    the import slower still.
    """
    time.sleep(min(MAX_PAUSE, (time.process_time() - started) * pause_ratio()))


def unconfirmed_hours() -> int:
    """Hours an upload waits for "import" or "import nothing" before it is purged."""
    return getattr(settings, "KEHU_IMPORT_UNCONFIRMED_HOURS", 24)


def expires_at(job: ImportJob) -> datetime:
    return job.created_at + timedelta(hours=unconfirmed_hours())


# The scheduled action that purges an upload nobody confirmed (crm/scheduler).
IMPORT_EXPIRE = "customers.import_expire"
# ImportJob.error of a job purged unconfirmed (status cancelled): the pages say so.
EXPIRED = "expired"


def slice_rows() -> int:
    """Rows one execute task imports before it queues its successor.

    Short tasks keep a worker restart cheap and let other users' jobs take turns.
    """
    return getattr(settings, "KEHU_IMPORT_SLICE_ROWS", 500)


# --- bounds: what a file may cost before and while it is read --------------------------
# A 2 KB sheet declaring A1:XFD20000 made openpyxl pad 20,000 rows to 16,384 cells (23 s
# per read), and a 52 KB file unpacked a 50 MB shared string into the web process. A
# real customer list is far inside every bound below; a file outside one is refused
# before the part concerned is read, or at the row that crosses it.
MAX_COLUMNS = 100
MAX_CELL_CHARS = 32_767  # Excel's own limit for one cell
MAX_LINE_CHARS = 100_000  # one physical CSV line
# The zip directory: an .xlsx has a dozen parts. ZipFile reads the whole central
# directory as it opens (300,000 empty parts in 26 MB: 5.8 s), so its size is checked
# from the end record first.
MAX_ZIP_MEMBERS = 1_000
MAX_ZIP_DIRECTORY_BYTES = 256 * 1024
# Deflated XML of a real sheet unpacks 10-35 times (openpyxl, 50,000 rows, varied or all
# alike); a bomb, 1,000 times.
MAX_RATIO = 100
RATIO_CHECKED_ABOVE = 1024 * 1024
# Excel has 255 sheets at most in practice; openpyxl opens every one as it loads.
MAX_SHEETS = 255


def max_lines() -> int:
    """Spreadsheet rows or CSV lines, blank ones included: room for a header, the rows
    and as many blank or wrapped lines again."""
    return 2 * max_rows() + 1


def max_cells() -> int:
    return 40 * max_rows()


def max_unpacked_bytes() -> int:
    """All parts of an .xlsx unpacked (openpyxl writes 80 MB of sheet XML for 50,000
    rows of 20 columns)."""
    return 10 * max_upload_bytes()


def max_part_bytes() -> int:
    """Any part but a worksheet unpacked: openpyxl keeps the shared strings, styles and
    workbook in memory, where a sheet is streamed."""
    return 2 * max_upload_bytes()


def _mb(size: int) -> int:
    return max(1, size // (1024 * 1024))


# --- reading files ---------------------------------------------------------------------


def _header_key(text: str) -> str:
    """'负责人(username)', ' 名称* ', 'Ｎａｍｅ' -> '负责人', '名称', 'name'."""
    text = text.translate(FULL_WIDTH).replace("\ufeff", "")
    text = re.sub(r"[（(].*?[）)]", "", text)
    return re.sub(r"[\s*＊:：]", "", text).lower()


HEADER_LOOKUP = {
    _header_key(alias): name for name, aliases in COLUMNS.items() for alias in aliases
}


def _cell_text(value: Any) -> str:
    """One spreadsheet cell as text; Excel keeps phone numbers as floats."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


class _Borrowed(io.RawIOBase):
    """Reads a file it does not own: closing the text reader over it leaves it open."""

    def __init__(self, handle: IO[bytes]) -> None:
        super().__init__()
        self.handle = handle

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _csv_encoding(handle: IO[bytes]) -> str:
    """The file's encoding, decided by decoding it in 64 KB pieces (never all at once)."""
    handle.seek(0)
    head = handle.read(8192)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        # Excel's "Unicode text" export: UTF-16 with a BOM, tab-separated.
        return "utf-16"
    if b"\x00" in head:
        raise ValidationError(
            _("文件内容不是文本格式的 CSV。Excel 文件请保存为 .xlsx 后上传。")
        )
    # Excel in a Chinese Windows saves CSV as GBK; GB18030 is its superset.
    for encoding in ("utf-8-sig", "gb18030"):
        handle.seek(0)
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            while piece := handle.read(64 * 1024):
                decoder.decode(piece)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise ValidationError(
        _("无法识别文件编码，请另存为 UTF-8 或 GBK 编码的 CSV 文件。")
    )


def _csv_rows(handle: IO[bytes]) -> tuple[str, Iterator[list[str]]]:
    """(encoding, rows), read line by line: a file of a million rows never sits in
    memory whole. Each physical line is bounded (MAX_LINE_CHARS, max_lines()) before
    the csv module splits it."""
    encoding = _csv_encoding(handle)
    handle.seek(0)
    text = io.TextIOWrapper(
        io.BufferedReader(_Borrowed(handle), 64 * 1024),
        encoding=encoding,
        newline="",
    )
    lines = _bounded_lines(text)
    first_line = next(lines, "")
    delimiter = max(",\t;", key=first_line.count)
    if not first_line.count(delimiter):
        delimiter = ","
    reader = csv.reader(itertools.chain([first_line], lines), delimiter=delimiter)
    return encoding, (list(row) for row in reader)


def _bounded_lines(text: IO[str]) -> Iterator[str]:
    """The physical lines of a CSV, refused at the first one past a bound (a 20 MB line
    of commas is 20 million cells; 20 MB of newlines, 20 million rows)."""
    limit = max_lines()
    for number in itertools.count(1):
        line = text.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        if number > limit:
            raise too_many_lines(limit)
        if len(line.rstrip("\r\n")) > MAX_LINE_CHARS:
            raise ValidationError(
                _("第 %(line)d 行超过 %(limit)s 个字符，请检查文件。")
                % {"line": number, "limit": f"{MAX_LINE_CHARS:,}"}
            )
        yield line


def too_many_lines(limit: int) -> ValidationError:
    return ValidationError(
        _("文件超过 %(limit)s 行（含空行），请删除空行或拆分文件。")
        % {"limit": f"{limit:,}"}
    )


def too_wide(line: int) -> ValidationError:
    return ValidationError(
        _("第 %(line)d 行超过 %(limit)d 列，请删除多余的列。")
        % {"line": line, "limit": MAX_COLUMNS}
    )


CANNOT_OPEN_XLSX = gettext_lazy(
    "无法打开该 Excel 文件，请确认是 .xlsx 格式（旧版 .xls 请另存为 .xlsx）。"
)


def _zip_directory(handle: IO[bytes]) -> tuple[int, int] | None:
    """(entries, bytes) of the central directory as the end record states them, or
    None if there is no end record (ZipFile then refuses the file)."""
    handle.seek(0, io.SEEK_END)
    size = handle.tell()
    # The end record is 22 bytes plus a comment of at most 65,535.
    handle.seek(max(0, size - 22 - 65_535))
    tail = handle.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    _disk, _start, _here, entries, directory, _offset = struct.unpack(
        "<4H2L", tail[at + 4 : at + 20]
    )
    return entries, directory


def _check_package(handle: IO[bytes]) -> None:
    """Refuse an .xlsx whose parts would cost more to unpack than any customer list,
    from the zip directory alone (the sizes it states are all ZipFile ever unpacks:
    it stops there and fails the CRC check)."""
    directory = _zip_directory(handle)
    if directory is not None and (
        directory[0] > MAX_ZIP_MEMBERS or directory[1] > MAX_ZIP_DIRECTORY_BYTES
    ):
        raise ValidationError(_("Excel 文件包含的部件过多，不是正常的表格文件。"))
    handle.seek(0)
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise ValidationError(str(CANNOT_OPEN_XLSX)) from exc
    with archive:  # leaves `handle` open
        members = archive.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise ValidationError(_("Excel 文件包含的部件过多，不是正常的表格文件。"))
        if sum(member.file_size for member in members) > max_unpacked_bytes():
            raise ValidationError(
                _("Excel 文件解压后超过 %(mb)d MB，请删除无关的工作表或拆分文件。")
                % {"mb": _mb(max_unpacked_bytes())}
            )
        for member in members:
            if (
                member.file_size > RATIO_CHECKED_ABOVE
                and member.file_size > MAX_RATIO * max(1, member.compress_size)
            ):
                raise ValidationError(
                    _(
                        "Excel 文件的压缩比异常（超过 %(ratio)d 倍），不是正常的表格文件。"
                    )
                    % {"ratio": MAX_RATIO}
                )
        kinds = _content_types(archive, members)
        for member in members:
            kind = kinds.get(member.filename)
            if kind != WORKSHEET_TYPE and member.file_size > max_part_bytes():
                raise ValidationError(
                    _("Excel 文件中的文字内容超过 %(mb)d MB，请拆分文件。")
                    % {"mb": _mb(max_part_bytes())}
                )
            if kind == WORKBOOK_TYPE:
                sheets = SHEET_TAG.findall(archive.read(member))
                if len(sheets) > MAX_SHEETS:
                    raise ValidationError(
                        _("Excel 文件的工作表超过 %(limit)d 个，请删除无关的工作表。")
                        % {"limit": MAX_SHEETS}
                    )


WORKSHEET_TYPE = (
    "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
)
WORKBOOK_TYPE = (
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
)
SHEET_TAG = re.compile(rb"<(?:[\w.-]+:)?sheet[\s/>]")


def _content_types(archive: zipfile.ZipFile, members: list[Any]) -> dict[str, str]:
    """{part name: content type} from [Content_Types].xml, as openpyxl finds the shared
    strings and the workbook (by these overrides, whatever the parts are called)."""
    from openpyxl.xml.functions import fromstring  # defusedxml when installed

    manifest = next((m for m in members if m.filename == "[Content_Types].xml"), None)
    if manifest is None or manifest.file_size > max_part_bytes():
        return {}
    try:
        tree = fromstring(archive.read(manifest))
    except Exception as exc:  # noqa: BLE001 - damaged XML is the file's problem
        raise ValidationError(str(CANNOT_OPEN_XLSX)) from exc
    return {
        element.get("PartName", "").lstrip("/"): element.get("ContentType", "")
        for element in tree
        if element.tag.endswith("Override")
    }


def _check_dimension(sheet: Any) -> None:
    """Refuse a sheet whose declared size is beyond the bounds, before any row is read."""
    if sheet.max_row is None or sheet.max_column is None:
        return  # no <dimension>: the rows are bounded as they are read
    rows = sheet.max_row - sheet.min_row + 1
    columns = sheet.max_column - sheet.min_column + 1
    if (
        sheet.max_row > max_lines()
        or sheet.max_column > MAX_COLUMNS
        or (rows * columns > max_cells())
    ):
        raise ValidationError(
            _(
                "表格范围过大（%(declared_rows)s 行 × %(declared_columns)s 列）："
                "最多 %(rows)s 行、%(columns)d 列、%(cells)s 个单元格。"
                "请删除多余的行列，或把数据复制到新的工作表后再上传。"
            )
            % {
                "declared_rows": f"{sheet.max_row:,}",
                "declared_columns": f"{sheet.max_column:,}",
                "rows": f"{max_lines():,}",
                "columns": MAX_COLUMNS,
                "cells": f"{max_cells():,}",
            }
        )


def _bounded_rows(rows: Iterable[tuple[Any, ...]]) -> Iterator[list[str]]:
    """The sheet's rows as text, refused at the first one past a bound.

    openpyxl yields one (empty) row for each row number a sheet skips, and pads a row
    to its last cell's column: both are counted, so a lying sheet costs at most the
    bounds.
    """
    line_limit, cell_limit = max_lines(), max_cells()
    cells = 0
    for line, values in enumerate(rows, start=1):
        if line > line_limit:
            raise too_many_lines(line_limit)
        if len(values) > MAX_COLUMNS:
            raise too_wide(line)
        cells += len(values)
        if cells > cell_limit:
            raise ValidationError(
                _("表格超过 %(limit)s 个单元格，请删除多余的列或拆分文件。")
                % {"limit": f"{cell_limit:,}"}
            )
        texts = [_cell_text(v) for v in values]
        if texts and max(map(len, texts)) > MAX_CELL_CHARS:
            raise ValidationError(
                _("第 %(line)d 行有单元格超过 %(limit)s 个字符，请检查文件。")
                % {"line": line, "limit": f"{MAX_CELL_CHARS:,}"}
            )
        yield texts


def _xlsx_rows(handle: IO[bytes]) -> Iterator[list[str]]:
    import openpyxl

    _check_package(handle)
    handle.seek(0)
    try:
        workbook = openpyxl.load_workbook(handle, read_only=True, data_only=True)
    except Exception as exc:  # any damage to the zip or XML is the file's problem
        raise ValidationError(str(CANNOT_OPEN_XLSX)) from exc
    try:
        if not workbook.worksheets:
            return
        sheet = workbook.worksheets[0]
        _check_dimension(sheet)
        # Read to the rows the sheet holds, not those its <dimension> claims.
        sheet.reset_dimensions()
        yield from _bounded_rows(sheet.iter_rows(values_only=True))
    except ValidationError:
        raise
    except Exception as exc:  # a damaged sheet can fail at any row
        raise ValidationError(_("Excel 文件内容已损坏，无法读取。")) from exc
    finally:
        workbook.close()


def read_rows(handle: IO[bytes], file_format: str) -> tuple[str, Iterator[list[str]]]:
    """(encoding, every row as a list of stripped strings); ValidationError if unreadable."""
    if file_format == ImportJob.Format.XLSX:
        return "", _xlsx_rows(handle)
    encoding, rows = _csv_rows(handle)
    return encoding, _guard_csv(rows)


def _guard_csv(rows: Iterator[list[str]]) -> Iterator[list[str]]:
    try:
        for line, row in enumerate(rows, start=1):
            if len(row) > MAX_COLUMNS:
                raise too_wide(line)
            # A NUL past the binary check above reached PostgreSQL, which refuses it in
            # text: the validation task failed. It never means anything in a cell.
            yield [cell.replace("\x00", "").strip() for cell in row]
    except csv.Error as exc:
        raise ValidationError(
            _("CSV 文件格式有误：%(error)s") % {"error": exc}
        ) from exc


def _is_blank(row: list[str]) -> bool:
    return not any(cell for cell in row)


def split_header(
    rows: Iterator[list[str]],
) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The first non-empty row as the header, then (spreadsheet row number, cells)."""
    numbered = enumerate(rows, start=1)
    for _line, row in numbered:
        if not _is_blank(row):
            header = row
            break
    else:
        raise ValidationError(_("文件是空的，没有任何数据。"))
    records = ((line, row) for line, row in numbered if not _is_blank(row))
    return header, records


def map_headers(header: list[str], kind: str = "customers") -> dict[str, Any]:
    """{"fields": {column index: field}, "ignored": [headers not understood]}."""
    lookup = KINDS[kind].header_lookup() if kind != "customers" else HEADER_LOOKUP
    fields: dict[int, str] = {}
    ignored = []
    for index, title in enumerate(header):
        name = lookup.get(_header_key(title))
        if name and name not in fields.values():
            fields[index] = name
        elif title.strip():
            ignored.append(title.strip())
    return {"fields": fields, "ignored": ignored}


@dataclass
class Inspection:
    file_format: str
    encoding: str
    columns: dict[str, Any]
    total_rows: int


def inspect_upload(upload: Any, kind: str = "customers") -> Inspection:
    """Check an uploaded file before it is stored: type, size, readable, has names.

    Reads the whole file once (at most max_upload_bytes) to count rows; leaves the
    file positioned at its start.
    """
    suffix = PurePath(upload.name or "").suffix.lower()
    if suffix not in EXTENSIONS:
        raise ValidationError(_("只能上传 .csv 或 .xlsx 文件。"))
    if not upload.size:
        raise ValidationError(_("上传的文件是空的。"))
    if upload.size > max_upload_bytes():
        raise ValidationError(
            _("文件超过 %(mb)d MB，请拆分后分批导入。")
            % {"mb": max_upload_bytes() // (1024 * 1024)}
        )
    file_format = EXTENSIONS[suffix]
    upload.seek(0)
    try:
        encoding, rows = read_rows(upload, file_format)
        header, records = split_header(rows)
        columns = map_headers(header, kind)
        if kind != "customers":
            KINDS[kind].check_columns(set(columns["fields"].values()))
        elif "name" not in columns["fields"].values():
            raise ValidationError(
                _("第一行没有找到“名称”（或“姓名”）列。请使用导入模板中的表头。")
            )
        limit = max_rows()
        total = sum(1 for _record in itertools.islice(records, limit + 1))
    finally:
        upload.seek(0)
    if not total:
        raise ValidationError(_("文件只有表头，没有数据行。"))
    if total > limit:
        raise ValidationError(
            _("一次最多导入 %(limit)s 行，请拆分文件。") % {"limit": f"{limit:,}"}
        )
    return Inspection(file_format, encoding, _jsonable(columns), total)


def _jsonable(columns: dict[str, Any]) -> dict[str, Any]:
    return {
        "fields": {str(i): name for i, name in columns["fields"].items()},
        "ignored": columns["ignored"],
    }


# --- validating rows -------------------------------------------------------------------


def held_phones(numbers: Iterable[str]) -> list[tuple[str, tuple[int, str]]]:
    """(number, (customer id, customer name)) for each number a customer already has,
    in the order the numbers were registered (CustomerPhone id): one query.

    The numbers are joined as an unnested array, not `number IN (...)`: for a list of
    them PostgreSQL chose the trigram GIN index (customer_phone_trgm), which took about
    1.6 s for 500 numbers against 12,000 phones; this way it uses the unique b-tree.
    """
    numbers = sorted(set(numbers))
    if not numbers:
        return []
    rows = (
        CustomerPhone.objects.filter(
            number__in=RawSQL("SELECT unnest(%s::varchar[])", (numbers,))
        )
        .order_by("pk")
        .values_list("number", "customer_id", "customer__name")
    )
    return [(number, (pk, name)) for number, pk, name in rows]


@functools.cache
def _choice_lookup(field_name: str) -> dict[str, str]:
    """Accepted spellings of a choice: its code and its Chinese and English labels."""
    lookup = {}
    for value, label in CHOICE_FIELDS[field_name].choices:
        lookup[value.lower()] = value
        for language in ("zh-hans", "en"):
            with translation.override(language):
                lookup[str(label).strip().lower()] = value
    return lookup


def _choice_labels(field_name: str) -> str:
    separator = translation.pgettext("list separator", "、")
    return separator.join(str(label) for _v, label in CHOICE_FIELDS[field_name].choices)


def _field_label(field_name: str) -> str:
    return str(Customer._meta.get_field(field_name).verbose_name)


@dataclass
class _Draft:
    line: int
    name: str
    raw_phone: str = ""
    phones: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # each phone's, in the same order
    id_index: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Invalid values of FALLBACK_FIELDS: {field: the value as in the file ("" for an
    # ID number, never kept)}, and their reasons (also in `errors`, in the order
    # found). A row with only these errors may be kept.
    fallback: dict[str, str] = field(default_factory=dict)
    fallback_errors: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        """Errors other than the invalid values a fallback may leave out."""
        return len(self.errors) > len(self.fallback_errors)

    external_id: str = ""
    # The existing customer this row updates (matched by its external id).
    update_id: int | None = None


class RowChecker:
    """Validates rows batch by batch, remembering what earlier rows of the file held."""

    def __init__(self, *, by: Any, fields: dict[int, str]) -> None:
        self.by = by
        self.fields = fields
        self.owners = {
            username.lower(): (pk, username)
            for pk, username in selectors.owner_choices(user=by).values_list(
                "pk", "username"
            )
        }
        self.seen_phones: dict[str, int] = {}
        self.seen_ids: dict[str, int] = {}
        self.seen_external: dict[tuple[str, str], int] = {}

    def check(self, batch: list[tuple[int, list[str]]]) -> list[ImportRow]:
        drafts = [self._parse(line, cells) for line, cells in batch]
        self._match_external(drafts)
        self._check_existing(drafts)
        rows = []
        for draft in drafts:
            key = (draft.data.get("external_source", ""), draft.external_id)
            if draft.external_id and key in self.seen_external:
                draft.errors.append(
                    _("外部编号 %(id)s 与第 %(line)d 行重复。")
                    % {"id": draft.external_id, "line": self.seen_external[key]}
                )
            elif draft.external_id:
                self.seen_external[key] = draft.line
            for number in draft.phones:
                if number in self.seen_phones:
                    draft.errors.append(
                        _("电话 %(number)s 与第 %(line)d 行重复。")
                        % {"number": number, "line": self.seen_phones[number]}
                    )
            if draft.id_index in self.seen_ids:
                draft.errors.append(
                    _("身份证号与第 %(line)d 行重复。")
                    % {"line": self.seen_ids[draft.id_index]}
                )
            if not draft.errors:
                # Only rows that will be imported claim their phone and ID number.
                self.seen_phones.update(dict.fromkeys(draft.phones, draft.line))
                if draft.id_index:
                    self.seen_ids[draft.id_index] = draft.line
            data = draft.data
            if draft.fallback and not draft.refused:
                # Refused unless the preview keeps rows without these values: then
                # imported without them, flagged for review (import_job_confirm).
                data = {
                    **data,
                    "fallback": sorted(draft.fallback),
                    "review": draft.fallback,
                }
            rows.append(
                ImportRow(
                    line=draft.line,
                    status=ImportRow.Status.INVALID
                    if draft.errors
                    else ImportRow.Status.VALID,
                    name=draft.name[:200],
                    phone=(", ".join(draft.phones) or draft.raw_phone)[:60],
                    data={} if draft.refused else data,
                    errors=draft.errors,
                    warnings=draft.warnings,
                )
            )
        return rows

    def _match_external(self, drafts: list[_Draft]) -> None:
        """Rows whose (source system, external id) an earlier import stored: they
        update that customer (if the importer may see it), one query per source."""
        wanted: dict[str, set[str]] = {}
        for draft in drafts:
            if draft.external_id:
                source = draft.data.get("external_source", "")
                wanted.setdefault(source, set()).add(draft.external_id)
        if not wanted:
            return
        found: dict[tuple[str, str], int] = {}
        for source, ids in wanted.items():
            for external_id, pk, merged_into in Customer.objects.filter(
                external_source=source, external_id__in=ids
            ).values_list("external_id", "pk", "merged_into_id"):
                found[(source, external_id)] = merged_into or pk
        visible = set(
            Customer.objects.visible_to(self.by)
            .filter(pk__in=set(found.values()))
            .values_list("pk", flat=True)
        )
        for draft in drafts:
            pk = found.get((draft.data.get("external_source", ""), draft.external_id))
            if pk is None:
                continue
            if pk not in visible:
                draft.errors.append(
                    _("外部编号 %(id)s 已属于另一团队的现有客户。")
                    % {"id": draft.external_id}
                )
                continue
            draft.update_id = pk
            draft.data["update_id"] = pk

    def _check_existing(self, drafts: list[_Draft]) -> None:
        """Phones and ID numbers already held by a customer: one query each per batch."""
        numbers = {n for d in drafts for n in d.phones}
        indexes = {d.id_index for d in drafts if d.id_index}
        phone_owner = {
            number: customer_id for number, (customer_id, _name) in held_phones(numbers)
        }
        id_owner = dict(
            Customer.objects.filter(id_number_index__in=indexes).values_list(
                "id_number_index", "pk"
            )
        )
        # Name a customer the importer may see; for others only say that one exists.
        visible = dict(
            Customer.objects.visible_to(self.by)
            .filter(pk__in={*phone_owner.values(), *id_owner.values()})
            .values_list("pk", "name")
        )
        hidden = {*phone_owner.values(), *id_owner.values()} - visible.keys()
        if hidden:
            # The preview told the importer that these belong to someone outside
            # their scope: on record, one row per batch (see _create_chunk).
            audit.record(
                None,
                audit.DUPLICATE_HIDDEN,
                user=self.by,
                object_type=ImportJob._meta.model_name,
                outcome=audit.DENIED,
                row_count=len(hidden),
                detail="import preview",
            )
        for draft in drafts:
            for number in draft.phones:
                if number not in phone_owner or phone_owner[number] == draft.update_id:
                    continue  # free, or the customer this row updates has it
                name = visible.get(phone_owner[number])
                draft.errors.append(
                    _("电话 %(number)s 已属于另一团队的现有客户。") % {"number": number}
                    if name is None
                    else _("电话 %(number)s 已属于现有客户“%(name)s”。")
                    % {"number": number, "name": name}
                )
            if (
                draft.id_index in id_owner
                and id_owner[draft.id_index] != draft.update_id
            ):
                name = visible.get(id_owner[draft.id_index])
                draft.errors.append(
                    _("身份证号已属于另一团队的现有客户。")
                    if name is None
                    else _("身份证号已属于现有客户“%(name)s”。") % {"name": name}
                )

    def _parse(self, line: int, cells: list[str]) -> _Draft:
        values = {
            name: cells[index].strip() if index < len(cells) else ""
            for index, name in self.fields.items()
        }
        draft = _Draft(
            line=line, name=values.get("name", ""), raw_phone=values.get("phone", "")
        )
        if not draft.name:
            draft.errors.append(_("缺少名称。"))
        data: dict[str, Any] = {"name": draft.name}
        for name in CHOICE_FIELDS:
            raw = values.get(name, "")
            if not raw:
                continue
            code = _choice_lookup(name).get(raw.lower())
            if code is None:
                draft.errors.append(
                    _("%(label)s“%(value)s”无效，可选：%(choices)s。")
                    % {
                        "label": _field_label(name),
                        "value": raw,
                        "choices": _choice_labels(name),
                    }
                )
            else:
                data[name] = code
        for name in BOOLEAN_FIELDS:
            raw = values.get(name, "").lower()
            if raw in TRUE_WORDS:
                data[name] = True
            elif raw not in FALSE_WORDS:
                draft.errors.append(
                    _("%(label)s应填“是”或“否”，不能是“%(value)s”。")
                    % {"label": _field_label(name), "value": values[name]}
                )
        for name in TEXT_FIELDS:
            if values.get(name):
                data[name] = values[name]
        if values.get("tags"):
            data["tags"] = sorted(
                {t.strip() for t in LIST_SEPARATORS.split(values["tags"]) if t.strip()}
            )
        self._parse_phones(values.get("phone", ""), draft)
        id_columns = self._parse_id_number(values.get("id_number", ""), draft)
        self._check_model(data, draft)
        owner_id, owner_label = self._owner(values.get("owner", ""), draft)
        draft.data = {
            "fields": data,
            "phones": draft.phones,
            # The kinds and the ID number's columns as checked here: the import stores
            # them without parsing again (builder.build's checked_phones, checked_id).
            "kinds": draft.kinds,
            "id_cipher": id_columns[0] if id_columns else "",
            "id_index": id_columns[1] if id_columns else "",
            "id_masked": id_columns[2] if id_columns else "",
            "owner_id": owner_id,
            "owner_label": owner_label,  # for the preview
        }
        self._parse_external(values, draft)
        return draft

    @staticmethod
    def _parse_external(values: dict[str, str], draft: _Draft) -> None:
        """The external id, its source system and the organisation reference."""
        source = values.get("external_source", "")
        external_id = values.get("external_id", "")
        for raw, limit, label in (
            (source, 50, _("来源系统")),
            (external_id, 100, _("外部编号")),
        ):
            if len(raw) > limit:
                draft.errors.append(
                    _("%(label)s超过 %(limit)d 个字符。")
                    % {"label": label, "limit": limit}
                )
                return
        if external_id:
            draft.external_id = external_id
            draft.data["external_id"] = external_id
            draft.data["external_source"] = source
        org_name = values.get("organization", "")
        org_id = values.get("organization_external_id", "")
        if not (org_name or org_id):
            return
        if draft.data["fields"].get("is_organization"):
            draft.warnings.append(_("机构本身不属于其他机构：所属机构列已忽略。"))
            return
        if len(org_name) > 100 or len(org_id) > 100:
            draft.errors.append(_("所属机构或所属机构编号超过 100 个字符。"))
            return
        draft.data["organization_ref"] = {
            "name": org_name,
            "external_id": org_id,
            "source": source,
        }

    @staticmethod
    def _parse_phones(raw: str, draft: _Draft) -> None:
        for part in LIST_SEPARATORS.split(raw):
            if not part.strip():
                continue
            try:
                number, kind = phones.normalise_phone(part.strip())
            except ValidationError as error:
                draft.errors.extend(error.messages)
                draft.fallback_errors.extend(error.messages)
                kept = draft.fallback.get("phone")
                draft.fallback["phone"] = (
                    f"{kept}, {part.strip()}" if kept else part.strip()
                )[:100]
                continue
            if number not in draft.phones:
                draft.phones.append(number)
                draft.kinds.append(kind)

    @staticmethod
    def _parse_id_number(raw: str, draft: _Draft) -> tuple[str, str, str] | None:
        """The customer's columns for the number (cipher, blind index, mask), or None.
        The waiting rows must not hold the number in clear."""
        if not raw:
            return None
        try:
            number = identity.normalise_id_number(raw)
        except ValidationError as error:
            draft.errors.extend(error.messages)
            draft.fallback_errors.extend(error.messages)
            draft.fallback["id_number"] = ""  # an invalid ID number is not kept
            return None
        columns = builder.id_number_columns(number)
        draft.id_index = columns[1]
        return columns

    @staticmethod
    def _check_model(data: dict[str, Any], draft: _Draft) -> None:
        """Lengths, e-mail and choices exactly as customer_create's full_clean sees them."""
        # Only the fields the file set: the others keep their (valid) defaults.
        unset = [f.name for f in Customer._meta.concrete_fields if f.name not in data]
        try:
            Customer(**data).full_clean(
                exclude=unset, validate_unique=False, validate_constraints=False
            )
        except ValidationError as error:
            for name, messages in error.message_dict.items():
                if name == "name" and not draft.name:
                    continue  # already reported as missing
                label = _field_label(name) if name != "__all__" else ""
                text = translation.pgettext("list separator", "；").join(messages)
                if label:
                    text = _("%(label)s：%(text)s") % {"label": label, "text": text}
                if name == "email":
                    # Kept out of the row if the preview says so (FALLBACK_FIELDS).
                    draft.fallback["email"] = str(data.pop("email"))[:254]
                    draft.fallback_errors.append(text)
                draft.errors.append(text)

    def _owner(self, raw: str, draft: _Draft) -> tuple[int | None, str]:
        """(owner id or None for the pool, what the preview shows) by the owner rule."""
        if raw.lower() in POOL_WORDS:
            return None, _("公海")
        owner = self.owners.get(raw.lower())
        if owner is not None:
            return owner
        if raw:
            draft.warnings.append(
                _("负责人“%(name)s”不存在或不在您的管理范围内，将由您负责。")
                % {"name": raw}
            )
        return self.by.pk, self.by.username


# --- the job -----------------------------------------------------------------------------


def _enqueue_validate(job_id: int) -> None:
    from customers import tasks

    tasks.import_job_validate_task.delay(job_id)


def _enqueue_execute(job_id: int) -> None:
    from customers import tasks

    tasks.import_job_execute_task.delay(job_id)


def import_job_create(
    *, by: Any, upload: Any, inspection: Inspection, kind: str = "customers"
) -> ImportJob:
    """Store the file and queue its validation; the preview follows on the job page."""
    if not may_import(by, kind):
        raise PermissionDenied
    job = ImportJob(
        created_by=by,
        kind=kind,
        original_name=PurePath(upload.name).name[:200],
        file_format=inspection.file_format,
        encoding=inspection.encoding,
        total_rows=inspection.total_rows,
        columns=inspection.columns,
        queued_at=timezone.now(),
    )
    job.file.save(upload.name, upload, save=False)
    with transaction.atomic():
        job.save()
        # The file holds clear ID numbers and the rows will: both go if the upload
        # is neither imported nor cancelled in time.
        scheduler.action_schedule(
            kind=IMPORT_EXPIRE,
            target_id=job.pk,
            due_at=expires_at(job),
            key=f"import:{job.pk}:expire",
        )
        # robust: a broker that is down must not fail the upload; the job page's poll
        # queues the job again (import_job_kick).
        transaction.on_commit(lambda: _enqueue_validate(job.pk), robust=True)
    return job


class JobBusy(Exception):
    """Another run holds the job's lease: try again once it has run out.

    After a worker is killed its task is delivered again at once, while the dead
    run's lease still stands; retrying after the lease lets the new run take over.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(f"import job busy for {seconds:.0f}s")
        self.seconds = seconds


def _claim(job_id: int, status: str) -> ImportJob | None:
    """Take the job for this run; None if it is not in `status` (done, cancelled).

    Raises JobBusy while another run's lease on it is still valid.
    """
    now = timezone.now()
    claimed = (
        ImportJob.objects.filter(pk=job_id, status=status)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + LEASE)
    )
    if not claimed:
        held_until = (
            ImportJob.objects.filter(pk=job_id, status=status)
            .values_list("lease_until", flat=True)
            .first()
        )
        if held_until:
            raise JobBusy(max(1.0, (held_until - now).total_seconds() + 1))
        return None
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    if job.started_at is None:
        job.started_at = now
        ImportJob.objects.filter(pk=job_id).update(started_at=now)
    return job


def _discard_file(job: ImportJob) -> None:
    """Forget the uploaded file; it is deleted once the transaction commits."""
    name, storage = job.file.name, job.file.storage
    ImportJob.objects.filter(pk=job.pk).update(file="")
    if name:
        transaction.on_commit(lambda: storage.delete(name), robust=True)


def _fail(job: ImportJob, message: str) -> None:
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.FAILED,
        error=message[:300],
        lease_until=None,
        finished_at=timezone.now(),
    )
    ImportRow.objects.filter(job=job).update(data={})
    _discard_file(job)


def _batches(records: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(records)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def import_job_validate(*, job_id: int) -> ImportJob | None:
    """Read the stored file into ImportRows; None if the job is not (or no longer) ours.

    Validation writes no customers, so a rerun after a crash simply starts again.
    """
    job = _claim(job_id, ImportJob.Status.VALIDATING)
    if job is None:
        return None
    ImportRow.objects.filter(job=job).delete()
    ImportJob.objects.filter(pk=job.pk).update(valid_rows=0, invalid_rows=0)
    try:
        with job.file.open("rb") as handle:
            _encoding, rows = read_rows(handle, job.file_format)
            header, records = split_header(rows)
            fields = map_headers(header, job.kind)["fields"]
            checker = (
                RowChecker(by=job.created_by, fields=fields)
                if job.kind == "customers"
                else KINDS[job.kind].checker(by=job.created_by, fields=fields)
            )
            for batch in _batches(
                itertools.islice(records, max_rows()), VALIDATE_BATCH
            ):
                started = time.process_time()
                with transaction.atomic():
                    rows_ = checker.check(batch)
                    for row in rows_:
                        row.job = job
                    copy_create(rows_)  # as bulk_create, a third of its Python time
                    valid = sum(r.status == ImportRow.Status.VALID for r in rows_)
                    # The job row's lock orders this batch and an expiry: a batch
                    # after it finds the job cancelled and takes its rows back.
                    if not ImportJob.objects.filter(
                        pk=job.pk, status=ImportJob.Status.VALIDATING
                    ).update(
                        valid_rows=F("valid_rows") + valid,
                        invalid_rows=F("invalid_rows") + len(rows_) - valid,
                        lease_until=timezone.now() + LEASE,
                    ):
                        raise _Ended
                if len(batch) == VALIDATE_BATCH:  # none after the last one
                    _pause(started)
    except _Ended:
        return None
    except (ValidationError, OSError, ValueError) as error:
        # The file cannot be read (any more): the job ends with the reason shown.
        messages = getattr(error, "messages", None) or [str(error)]
        _fail(job, " ".join(messages))
        job.refresh_from_db()
        return job
    except Exception:
        ImportJob.objects.filter(pk=job.pk).update(lease_until=None)
        raise
    with transaction.atomic():
        if ImportJob.objects.filter(
            pk=job.pk, status=ImportJob.Status.VALIDATING
        ).update(
            status=ImportJob.Status.READY,
            total_rows=F("valid_rows") + F("invalid_rows"),
            lease_until=None,
        ):
            # The rows are the job from here on (the preview, the report, the
            # import): the file and its clear ID numbers are not needed any more.
            _discard_file(job)
    job.refresh_from_db()
    return job


class _Ended(Exception):
    """The job was cancelled or expired while this run worked on it."""


def import_job_confirm(
    *, by: Any, job: ImportJob, fallbacks: dict[str, str] | None = None
) -> ImportJob:
    """ "Import all valid rows": queue the import of a previewed job.

    `fallbacks` ({field: KEEP or REFUSE} for FALLBACK_FIELDS, customers only): with
    KEEP, a row refused only for that field's invalid value (and other kept fields')
    is imported without the value, the customer flagged for review.
    """
    if not may_import(by, job.kind) or job.created_by_id != by.pk:
        raise PermissionDenied
    fallbacks = {
        name: KEEP
        for name, choice in (fallbacks or {}).items()
        if name in FALLBACK_FIELDS and choice == KEEP and job.kind == CUSTOMERS
    }
    if job.valid_rows == 0 and not (
        fallbacks and _fallback_rows(job, list(fallbacks)).exists()
    ):
        raise ValidationError(_("没有可导入的有效数据。"))
    with transaction.atomic():
        started = ImportJob.objects.filter(
            pk=job.pk, status=ImportJob.Status.READY
        ).update(
            status=ImportJob.Status.IMPORTING,
            queued_at=timezone.now(),
            fallbacks=fallbacks,
        )
        if not started:
            if ImportJob.objects.filter(pk=job.pk, error=EXPIRED).exists():
                raise ValidationError(_("该上传已过期删除，请重新上传。"))
            raise ValidationError(_("该导入已确认或已取消。"))
        if fallbacks:
            # The reasons become notes: the row is imported, the value left out.
            kept = _fallback_rows(job, list(fallbacks)).update(
                status=ImportRow.Status.VALID,
                warnings=RawSQL('"errors" || "warnings"', ()),
                errors=[],
            )
            ImportJob.objects.filter(pk=job.pk).update(
                valid_rows=F("valid_rows") + kept,
                invalid_rows=F("invalid_rows") - kept,
            )
        transaction.on_commit(lambda: _enqueue_execute(job.pk), robust=True)
    job.refresh_from_db()
    return job


def _fallback_rows(job: ImportJob, keep: list[str]) -> Any:
    """The rows refused only for invalid values of the fields in `keep`."""
    return ImportRow.objects.filter(
        job=job,
        status=ImportRow.Status.INVALID,
        data__has_key="fallback",
        data__fallback__contained_by=keep,
    )


def import_job_cancel(*, by: Any, job: ImportJob) -> ImportJob:
    """ "Import nothing": the job ends, its rows and file are deleted."""
    if job.created_by_id != by.pk:
        raise PermissionDenied
    with transaction.atomic():
        cancelled = ImportJob.objects.filter(
            pk=job.pk,
            status__in=[ImportJob.Status.VALIDATING, ImportJob.Status.READY],
        ).update(
            status=ImportJob.Status.CANCELLED,
            finished_at=timezone.now(),
            lease_until=None,
        )
        if not cancelled:
            raise ValidationError(_("导入已开始或已结束，无法取消。"))
        ImportRow.objects.filter(job=job).delete()
        _discard_file(job)
    job.refresh_from_db()
    return job


def import_job_expire(*, job_id: int) -> ImportJob | None:
    """Purge an upload nobody imported or cancelled in time: its rows and its file go,
    the job stays as cancelled, marked EXPIRED for its page. None if the job is not
    waiting (imported, importing, cancelled, already purged): safe to run twice.
    """
    with transaction.atomic():
        # Against a confirm at the same moment, the job row's lock decides.
        expired = ImportJob.objects.filter(
            pk=job_id,
            status__in=[ImportJob.Status.VALIDATING, ImportJob.Status.READY],
        ).update(
            status=ImportJob.Status.CANCELLED,
            error=EXPIRED,
            finished_at=timezone.now(),
            lease_until=None,
        )
        if not expired:
            return None
        ImportRow.objects.filter(job_id=job_id).delete()
        job = ImportJob.objects.get(pk=job_id)
        _discard_file(job)
    job.refresh_from_db()
    return job


def import_job_expire_action(action: Any) -> None:
    """Scheduled-action handler of IMPORT_EXPIRE (idempotent)."""
    import_job_expire(job_id=action.target_id)


def import_jobs_expire_overdue(*, now: datetime | None = None) -> dict[str, int]:
    """The daily catch-up: purge every upload past its time whatever its action did
    (uploads from before the action existed), and delete files in the imports folder
    that no waiting job holds and that are older than the bound (a delete that failed
    after its transaction, an upload whose job was never saved).
    """
    now = now or timezone.now()
    cutoff = now - timedelta(hours=unconfirmed_hours())
    overdue = ImportJob.objects.filter(
        status__in=[ImportJob.Status.VALIDATING, ImportJob.Status.READY],
        created_at__lt=cutoff,
    ).values_list("pk", flat=True)
    expired = sum(import_job_expire(job_id=pk) is not None for pk in list(overdue))
    storage = ImportJob._meta.get_field("file").storage
    try:
        _dirs, names = storage.listdir("imports")
    except FileNotFoundError:
        names = []
    held = set(
        ImportJob.objects.filter(file__startswith="imports/")
        .exclude(file="")
        .values_list("file", flat=True)
    )
    removed = 0
    for name in names:
        path = f"imports/{name}"
        if path in held or storage.get_modified_time(path) >= cutoff:
            continue
        storage.delete(path)
        removed += 1
    return {"imports_expired": expired, "import_files_removed": removed}


FINISHED = (
    ImportJob.Status.DONE,
    ImportJob.Status.FAILED,
    ImportJob.Status.CANCELLED,
)


def import_job_purge(*, job_id: int, now: datetime | None = None) -> bool:
    """Delete a finished job's rows and file, keep the job (its counts are the import's
    summary) marked purged_at. False if the job is running or already purged."""
    now = now or timezone.now()
    with transaction.atomic():
        # Against a rerun or a second purge at the same moment, the job row's lock.
        job = (
            ImportJob.objects.select_for_update(no_key=True)
            .filter(pk=job_id, status__in=FINISHED, purged_at__isnull=True)
            .first()
        )
        if job is None:
            return False
        ImportRow.objects.filter(job=job).delete()
        _discard_file(job)
        ImportJob.objects.filter(pk=job.pk).update(purged_at=now)
    return True


def import_jobs_purge_retained(
    *, now: datetime | None = None, days: int | None = None
) -> dict[str, int]:
    """The retention purge (daily job and `manage.py import_purge`): every import that
    finished more than `days` (KEHU_IMPORT_RETENTION_DAYS) ago loses its rows and
    file; the job with its counts stays. Job by job, so a large purge holds no long
    transaction; safe to run twice."""
    now = now or timezone.now()
    days = retention_days() if days is None else days
    cutoff = now - timedelta(days=days)
    due = ImportJob.objects.filter(status__in=FINISHED, purged_at__isnull=True).filter(
        Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, created_at__lt=cutoff)
    )
    purged = sum(
        import_job_purge(job_id=pk, now=now)
        for pk in list(due.order_by("pk").values_list("pk", flat=True))
    )
    return {"imports_purged": purged}


def import_job_execute(*, job_id: int, limit: int | None = None) -> ImportJob | None:
    """Import up to `limit` (default slice_rows()) waiting rows, then queue a task for
    the rest or finish the job.

    Each chunk of IMPORT_CHUNK rows is one transaction: create its customers and mark
    its rows, or neither.
    """
    limit = limit or slice_rows()
    job = _claim(job_id, ImportJob.Status.IMPORTING)
    if job is None:
        return None
    by = job.created_by
    if not (by.is_active and may_import(by, job.kind) and _may_create(by, job.kind)):
        _fail(job, _("导入人已没有导入权限，导入已停止。"))
        return job
    try:
        taken = 0
        while taken < limit:
            size = min(IMPORT_CHUNK, limit - taken)
            started = time.process_time()
            chunk = _import_chunk(job, by=by, size=size)
            taken += chunk
            if chunk < size:
                break  # no row left
            _pause(started)
    except Exception:
        # Let a retry start at once instead of waiting for the lease to run out.
        ImportJob.objects.filter(pk=job.pk).update(lease_until=None)
        raise
    if ImportRow.objects.filter(job=job, status=ImportRow.Status.VALID).exists():
        with transaction.atomic():
            ImportJob.objects.filter(pk=job.pk).update(
                lease_until=None, queued_at=timezone.now()
            )
            transaction.on_commit(lambda: _enqueue_execute(job.pk), robust=True)
    else:
        with transaction.atomic():
            ImportJob.objects.filter(
                pk=job.pk, status=ImportJob.Status.IMPORTING
            ).update(
                status=ImportJob.Status.DONE,
                finished_at=timezone.now(),
                lease_until=None,
            )
            # The report keeps names, phones and reasons; the rest is not needed (the
            # rows imported in chunks had theirs cleared with their mark).
            ImportRow.objects.filter(job=job).exclude(data={}).update(data={})
            _discard_file(job)
    job.refresh_from_db()
    return job


def _import_chunk(job: ImportJob, *, by: Any, size: int) -> int:
    """Import the next `size` waiting rows in one transaction; how many it took."""
    with transaction.atomic():
        # The row locks and status filter make a second worker on this job skip them.
        rows = list(
            ImportRow.objects.select_for_update(no_key=True)
            .filter(job=job, status=ImportRow.Status.VALID)
            .order_by("line")[:size]
        )
        if not rows:
            return 0
        if job.kind != "customers":
            KINDS[job.kind].import_rows(job, rows, by)
            return len(rows)
        owner_ids = {row.data.get("owner_id") for row in rows} - {None}
        owners = (
            get_user_model()
            .objects.filter(is_active=True)
            .select_related("team")
            .in_bulk(owner_ids)
        )
        _rematch_external(rows)
        creating = [row for row in rows if not row.data.get("update_id")]
        try:
            with transaction.atomic():
                _create_chunk(job, creating, by=by, owners=owners)
        except IntegrityError:
            # A phone or ID number registered by a concurrent create after the check in
            # _create_chunk: row by row, so only the rows concerned are skipped.
            for row in creating:
                _import_row(job, row, by=by, owners=owners)
        for row in rows:
            if row.data.get("update_id"):
                _update_row(job, row, by=by)
        _link_organizations(job, rows, by=by, owners=owners)
        return len(rows)


# The holder id of a customer this chunk creates (above every stored id).
CREATED_HERE = 1 << 62


@dataclass
class _Planned:
    row: ImportRow
    new: builder.NewCustomer

    @property
    def customer(self) -> Customer:
        return self.new.customer


def _create_chunk(
    job: ImportJob, rows: list[ImportRow], *, by: Any, owners: dict
) -> None:
    """Store the rows' customers as services.customer_create would, with bulk INSERTs.

    The rows and checks come from customers.builder, in its order; a row
    customer_create would refuse (a phone or ID number taken since the preview) is
    skipped with the message customer_create gives.
    """
    now = timezone.now()
    plans: list[_Planned] = []
    skipped: list[ImportRow] = []
    for row in rows:
        data = row.data
        owner_id = data.get("owner_id")
        try:
            new = builder.build(
                data=data.get("fields", {}),
                owner=None if owner_id is None else owners.get(owner_id, by),
                now=now,
                **_checked_numbers(data),
            )
        except ValidationError as error:
            _skip(row, error.messages, skipped)
            continue
        _set_import_fields(new.customer, data)
        plans.append(_Planned(row, new))
    # Customers created since the preview, one query each; then, as customer_create
    # run row after row would, the earlier rows of this chunk.
    id_holder = {
        index: (pk, name)
        for index, pk, name in Customer.objects.filter(
            id_number_index__in={
                p.customer.id_number_index for p in plans if p.customer.id_number_index
            }
        ).values_list("id_number_index", "pk", "name")
    }
    phone_holder: dict[str, tuple[int, str]] = {}
    for number, holder in held_phones(n for p in plans for n in p.new.numbers):
        phone_holder.setdefault(number, holder)
    # A holder is named only if the importer may see it, as in the preview.
    visible = set(
        Customer.objects.visible_to(by)
        .filter(
            pk__in={pk for pk, _name in [*id_holder.values(), *phone_holder.values()]}
        )
        .values_list("pk", flat=True)
    )
    hidden_hits = 0

    def name_for(holder: tuple[int, str]) -> str | None:
        nonlocal hidden_hits
        if holder[0] in visible or holder[0] == CREATED_HERE:
            return holder[1]
        hidden_hits += 1
        return None

    creating: list[_Planned] = []
    for plan in plans:
        customer = plan.customer
        index = customer.id_number_index
        try:
            if index and index in id_holder:
                raise services.id_number_taken(name_for(id_holder[index]))
            taken = [n for n in plan.new.numbers if n in phone_holder]
            if taken:
                # customer_create names the number registered first.
                number = min(taken, key=lambda n: phone_holder[n][0])
                raise services.phone_taken(number, name_for(phone_holder[number]))
            builder.clean(plan.new, in_bulk=True)
        except ValidationError as error:
            _skip(plan.row, error.messages, skipped)
            continue
        if index:
            id_holder[index] = (CREATED_HERE, customer.name)
        # A later row of the chunk finds these numbers registered after any stored one
        # (an id above every CustomerPhone id).
        for number in plan.new.numbers:
            phone_holder[number] = (CREATED_HERE, customer.name)
        creating.append(plan)
    if hidden_hits:
        # One row for the chunk: the importer learnt that this many numbers belong to
        # customers outside their scope (not counted toward the reveal limit, see
        # docs/security.md).
        audit.record(
            None,
            audit.DUPLICATE_HIDDEN,
            user=by,
            obj=job,
            outcome=audit.DENIED,
            row_count=hidden_hits,
            detail="import",
        )
    builder.save_many([p.new for p in creating], by=by, import_job=job.pk)
    _mark_imported(creating)
    if skipped:
        ImportRow.objects.bulk_update(skipped, ["status", "errors"])
    ImportJob.objects.filter(pk=job.pk).update(
        imported_rows=F("imported_rows") + len(creating),
        skipped_rows=F("skipped_rows") + len(skipped),
        lease_until=timezone.now() + LEASE,
    )


def _checked_numbers(data: dict[str, Any]) -> dict[str, Any]:
    """builder.build's arguments for the row's phones and ID number: as the preview
    checked them, or, for a row previewed before the preview kept them, to be
    checked again."""
    numbers = data.get("phones", [])
    kinds = data.get("kinds")
    cipher = data.get("id_cipher")
    checked: dict[str, Any] = (
        {"checked_phones": list(zip(numbers, kinds, strict=True))}
        if kinds is not None and len(kinds) == len(numbers)
        else {"phone_numbers": numbers}
    )
    if cipher and data.get("id_index") and data.get("id_masked"):
        checked["checked_id"] = (cipher, data["id_index"], data["id_masked"])
    elif cipher:
        checked["id_number"] = identity.decrypt(cipher)
    return checked


def _mark_imported(plans: list[_Planned]) -> None:
    """Each row imported with its customer, its data cleared: one UPDATE joined to the
    pairs (bulk_update builds a CASE of 500 branches, 0.4 s of Python for a chunk)."""
    if not plans:
        return
    table = connection.ops.quote_name(ImportRow._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            # The row's data is not needed once its customer exists: clearing it here
            # writes smaller row versions and spares the job's last UPDATE.
            f"UPDATE {table} AS r SET status = %s, customer_id = v.customer_id,"  # noqa: S608  # nosec B608
            " data = '{}'"
            " FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, customer_id)"
            " WHERE r.id = v.id",
            [
                ImportRow.Status.IMPORTED,
                [p.row.pk for p in plans],
                [p.customer.pk for p in plans],
            ],
        )
    for plan in plans:
        plan.row.status = ImportRow.Status.IMPORTED
        plan.row.customer = plan.customer


def _skip(row: ImportRow, messages: list[str], skipped: list[ImportRow]) -> None:
    row.status = ImportRow.Status.SKIPPED
    row.errors = messages
    skipped.append(row)


def _import_row(job: ImportJob, row: ImportRow, *, by: Any, owners: dict) -> None:
    """One row through services.customer_create (after a bulk insert's collision)."""
    with transaction.atomic():
        # The row lock and status check make a second worker on this job skip the row.
        row = (
            ImportRow.objects.select_for_update(no_key=True)
            .filter(pk=row.pk, status=ImportRow.Status.VALID)
            .first()
        )
        if row is None:
            return
        data = row.data
        owner_id = data.get("owner_id")
        owner = None if owner_id is None else owners.get(owner_id, by)
        cipher = data.get("id_cipher")
        try:
            with transaction.atomic(), pghistory.context(import_job=job.pk):
                customer = services.customer_create(
                    by=by,
                    data=data.get("fields", {}),
                    phone_numbers=data.get("phones", []),
                    id_number=identity.decrypt(cipher) if cipher else None,
                    owner=owner,
                )
        except ValidationError as error:
            # Someone registered the phone or ID number after the preview.
            row.status = ImportRow.Status.SKIPPED
            row.errors = error.messages
            counter = "skipped_rows"
        else:
            _set_import_fields(customer, data)
            with builder.history(by, import_job=job.pk):
                Customer.objects.filter(pk=customer.pk).update(
                    external_source=customer.external_source,
                    external_id=customer.external_id,
                    review_flags=customer.review_flags,
                )
            row.status = ImportRow.Status.IMPORTED
            row.customer = customer
            counter = "imported_rows"
        row.save(update_fields=["status", "errors", "customer"])
        ImportJob.objects.filter(pk=job.pk).update(
            **{counter: F(counter) + 1}, lease_until=timezone.now() + LEASE
        )


def _set_import_fields(customer: Customer, data: dict[str, Any]) -> None:
    """What an import stores beyond the form's fields: the external id and the values
    it left out for review."""
    if data.get("external_id"):
        customer.external_source = data.get("external_source", "")
        customer.external_id = data["external_id"]
    if data.get("review"):
        customer.review_flags = {**customer.review_flags, **data["review"]}


def _rematch_external(rows: list[ImportRow]) -> None:
    """A row to create whose external id a customer holds by now (an earlier chunk
    created it as a person's organisation, or another import ran): it updates that
    customer instead. One query per source system."""
    wanted: dict[str, list[ImportRow]] = {}
    for row in rows:
        if row.data.get("external_id") and not row.data.get("update_id"):
            wanted.setdefault(row.data.get("external_source", ""), []).append(row)
    for source, waiting in wanted.items():
        held = dict(
            Customer.objects.filter(
                external_source=source,
                external_id__in={row.data["external_id"] for row in waiting},
            ).values_list("external_id", "pk")
        )
        for row in waiting:
            if row.data["external_id"] in held:
                row.data["update_id"] = held[row.data["external_id"]]


def _update_row(job: ImportJob, row: ImportRow, *, by: Any) -> None:
    """A row whose external id an earlier import stored: the customer it created is
    updated with the file's values (services.customer_update: the form's checks and
    audit). The owner stays; the file's phones are added to the customer's."""
    data = row.data
    with transaction.atomic():
        customer = (
            Customer.objects.visible_to(by).filter(pk=data["update_id"]).first()
            if by.has_perm("customers.change_customer")
            else None
        )
        if customer is None:
            _finish_row(
                job, row, errors=[_("无权修改外部编号对应的现有客户，该行未导入。")]
            )
            return
        numbers = list(data.get("phones", []))
        if numbers:
            held = list(
                customer.phones.order_by("-is_primary", "pk").values_list(
                    "number", flat=True
                )
            )
            numbers = [*held, *(n for n in numbers if n not in held)]
        cipher = data.get("id_cipher")
        try:
            with transaction.atomic(), pghistory.context(import_job=job.pk):
                customer = services.customer_update(
                    by=by,
                    customer=customer,
                    version=customer.version,
                    data={
                        k: v
                        for k, v in data.get("fields", {}).items()
                        if k in services.EDITABLE_FIELDS
                    },
                    phone_numbers=numbers or None,
                    id_number=identity.decrypt(cipher) if cipher else None,
                )
                if data.get("review"):
                    _set_import_fields(customer, {"review": data["review"]})
                    with builder.history(by, import_job=job.pk):
                        Customer.objects.filter(pk=customer.pk).update(
                            review_flags=customer.review_flags
                        )
        except (ValidationError, services.EditConflict) as error:
            messages = getattr(error, "messages", None) or [
                _("该客户正被他人修改，请稍后重新导入。")
            ]
            _finish_row(job, row, errors=messages)
            return
        _finish_row(
            job,
            row,
            customer=customer,
            note=_("已更新现有客户（外部编号 %(id)s）。") % {"id": data["external_id"]},
        )


def _finish_row(
    job: ImportJob,
    row: ImportRow,
    *,
    customer: Customer | None = None,
    errors: list[str] | None = None,
    note: str = "",
) -> None:
    """Mark one row imported (with `customer`) or skipped (with `errors`), and count it."""
    if customer is not None:
        row.status, row.customer = ImportRow.Status.IMPORTED, customer
        counter = "imported_rows"
    else:
        row.status, row.errors = ImportRow.Status.SKIPPED, errors or []
        counter = "skipped_rows"
    if note:
        row.warnings = [*row.warnings, note]
    row.save(update_fields=["status", "errors", "warnings", "customer"])
    ImportJob.objects.filter(pk=job.pk).update(
        **{counter: F(counter) + 1}, lease_until=timezone.now() + LEASE
    )


def _link_organizations(
    job: ImportJob, rows: list[ImportRow], *, by: Any, owners: dict
) -> None:
    """Link the chunk's imported persons to their organisation (所属机构): the one with
    the row's organisation external id (same source system), else the oldest one of
    that name the importer may see, else a new organisation of that name (owned as
    the person is), created as any imported customer is. One query per lookup kind,
    one INSERT for the new ones, one UPDATE for the links (audited by the triggers)."""
    waiting = {row.pk: row for row in rows if row.data.get("organization_ref")}
    if not waiting:
        return
    # As stored: the row-by-row paths saved their own copies of the rows.
    refs = []
    # In file order: the first row naming a new organisation creates it (its owner,
    # its note), whatever order the database returns the rows in.
    for pk, customer_id, warnings in (
        ImportRow.objects.filter(
            pk__in=waiting, status=ImportRow.Status.IMPORTED, customer__isnull=False
        )
        .order_by("line")
        .values_list("pk", "customer_id", "warnings")
    ):
        row = waiting[pk]
        row.customer_id, row.warnings = customer_id, warnings
        refs.append((row, row.data["organization_ref"]))
    if not refs:
        return
    by_external: dict[tuple[str, str], int] = {}
    sources: dict[str, set[str]] = {}
    for _row, ref in refs:
        if ref["external_id"]:
            sources.setdefault(ref["source"], set()).add(ref["external_id"])
    organizations = Customer.objects.filter(
        is_organization=True, merged_into__isnull=True
    )
    for source, ids in sources.items():
        for external_id, pk in organizations.filter(
            external_source=source, external_id__in=ids
        ).values_list("external_id", "pk"):
            by_external[(source, external_id)] = pk
    by_name: dict[str, int] = {}
    for name, pk in (
        organizations.visible_to(by)
        .filter(name__in={ref["name"] for _row, ref in refs if ref["name"]})
        .order_by("pk")
        .values_list("name", "pk")
    ):
        by_name.setdefault(name, pk)
    now = timezone.now()
    created: dict[tuple[str, str], builder.NewCustomer] = {}
    links: list[tuple[ImportRow, tuple[str, str] | int]] = []
    noted: list[ImportRow] = []
    for row, ref in refs:
        key = (ref["source"], ref["external_id"])
        pk = by_external.get(key) if ref["external_id"] else None
        if pk is None and ref["name"]:
            pk = by_name.get(ref["name"])
        if pk is not None:
            links.append((row, pk))
            continue
        if not ref["name"]:
            row.warnings = [
                *row.warnings,
                _("没有外部编号为 %(id)s 的机构，未关联所属机构。")
                % {"id": ref["external_id"]},
            ]
            noted.append(row)
            continue
        new_key = key if ref["external_id"] else ("", "name:" + ref["name"])
        if new_key not in created:
            owner_id = row.data.get("owner_id")
            new = builder.build(
                data={
                    "name": ref["name"],
                    "is_organization": True,
                    "kind": Customer.Kind.ENTERPRISE,
                },
                owner=None if owner_id is None else owners.get(owner_id, by),
                now=now,
            )
            if ref["external_id"]:
                new.customer.external_source = ref["source"]
                new.customer.external_id = ref["external_id"]
            created[new_key] = new
            row.warnings = [
                *row.warnings,
                _("已新建所属机构“%(name)s”。") % {"name": ref["name"]},
            ]
            noted.append(row)
        links.append((row, new_key))
    if created:
        builder.save_many(list(created.values()), by=by, import_job=job.pk)
    pairs = [
        (
            row.customer_id,
            target if isinstance(target, int) else created[target].customer.pk,
        )
        for row, target in links
    ]
    pairs = [(person, org) for person, org in pairs if person != org]
    if pairs:
        table = connection.ops.quote_name(Customer._meta.db_table)
        with builder.history(by, import_job=job.pk), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS c SET organization_id = v.org,"  # noqa: S608  # nosec B608 # the table name is ours
                " version = c.version + 1, updated_at = now()"
                " FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, org)"
                " WHERE c.id = v.id",
                [[p for p, _o in pairs], [o for _p, o in pairs]],
            )
    if noted:
        ImportRow.objects.bulk_update(noted, ["warnings"])


def import_job_kick(*, job: ImportJob) -> bool:
    """Queue a running job again if no worker has held it for a while.

    Covers a broker restarted without persistence or a publish that failed: the job
    row, not the queue, says what is left to do.
    """
    if not job.is_running:
        return False
    now = timezone.now()
    requeued = (
        ImportJob.objects.filter(pk=job.pk, status=job.status)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=now - REQUEUE_AFTER))
        .update(queued_at=now)
    )
    if requeued:
        enqueue = (
            _enqueue_validate
            if job.status == ImportJob.Status.VALIDATING
            else _enqueue_execute
        )
        transaction.on_commit(lambda: enqueue(job.pk), robust=True)
    return bool(requeued)


# --- reads for the pages -----------------------------------------------------------------


def import_job_page(*, job: ImportJob) -> dict[str, Any]:
    """What the job page shows; a fixed number of queries whatever the file size."""
    fields = job.columns.get("fields", {})
    context: dict[str, Any] = {
        "job": job,
        # The first accepted header of each recognised column, as the template has it.
        "recognised_columns": [
            (COLUMNS if job.kind == "customers" else KINDS[job.kind].columns)[name][0]
            for name in fields.values()
        ],
        "kind": KINDS.get(job.kind),
        "ignored_columns": job.columns.get("ignored", []),
        "problem_rows": [],
        "valid_sample": [],
        "skipped_rows": [],
        "expires_at": expires_at(job),
        "is_expired": job.status == ImportJob.Status.CANCELLED and job.error == EXPIRED,
        "unconfirmed_hours": unconfirmed_hours(),
        "retention_days": retention_days(),
    }
    if job.status == ImportJob.Status.READY:
        context["problem_rows"] = list(
            job.rows.filter(
                Q(status=ImportRow.Status.INVALID) | ~Q(warnings=[])
            ).order_by("line")[:PREVIEW_ERRORS]
        )
        context["valid_sample"] = list(
            job.rows.filter(status=ImportRow.Status.VALID).order_by("line")[
                :PREVIEW_VALID
            ]
        )
        if job.kind == CUSTOMERS:
            context.update(_preview_counts(job))
    elif job.status == ImportJob.Status.DONE:
        context["skipped_rows"] = list(
            job.rows.filter(
                status__in=[ImportRow.Status.INVALID, ImportRow.Status.SKIPPED]
            ).order_by("line")[:PREVIEW_ERRORS]
        )
    context["preview_limit"] = PREVIEW_ERRORS
    return context


def _preview_counts(job: ImportJob) -> dict[str, Any]:
    """For the preview: per fallback field, the rows refused only for invalid values
    that keeping would import; and the rows that update an existing customer. Two
    queries whatever the file size."""
    counts = job.rows.filter(
        status=ImportRow.Status.INVALID, data__has_key="fallback"
    ).aggregate(
        total=Count("pk"),
        **{
            name: Count("pk", filter=Q(data__fallback__contains=[name]))
            for name in FALLBACK_FIELDS
        },
    )
    labels = {"phone": _("电话"), "email": _("邮箱"), "id_number": _("身份证号")}
    return {
        "fallback_total": counts["total"],
        "fallback_counts": [
            (name, labels[name], counts[name])
            for name in FALLBACK_FIELDS
            if counts[name]
        ],
        "update_rows": job.rows.filter(
            status=ImportRow.Status.VALID, data__has_key="update_id"
        ).count(),
    }


def import_report_rows(*, job: ImportJob) -> Iterator[list[str]]:
    """The per-row report: every row with its outcome and reasons (CSV download)."""
    yield [_("行号"), _("名称"), _("电话"), _("结果"), _("原因"), _("客户编号")]
    labels = dict(ImportRow.Status.choices)
    rows = job.rows.order_by("line").values_list(
        "line", "name", "phone", "status", "errors", "warnings", "customer_id"
    )
    for line, name, phone, status, errors, warnings, customer_id in rows.iterator(
        chunk_size=2000
    ):
        yield [
            str(line),
            name,
            phone,
            str(labels.get(status, status)),
            "；".join([*errors, *warnings]),
            str(customer_id or ""),
        ]


def template_rows() -> list[list[str]]:
    return [[header for header, _hint in TEMPLATE_HEADERS], TEMPLATE_EXAMPLE]


# --- other kinds of records --------------------------------------------------------------


@dataclass(frozen=True)
class ImportKind:
    """Another app's records imported through this module's reading, preview, job,
    expiry and report (deals: culture/deals/imports.py registers one in ready()).

    `checker(by=, fields=)` returns an object whose `check(batch)` turns
    (line, cells) pairs into ImportRows (valid with `data`, or invalid with reasons);
    `import_rows(job, rows, by)` imports locked VALID rows inside the chunk's
    transaction: it marks each row IMPORTED or SKIPPED (row.save) and adds to the
    job's imported_rows / skipped_rows counters.
    """

    key: str
    label: Any  # "商机"
    perm: str  # needed to upload, confirm and run
    create_perm: str  # what the rows create (checked again when the job runs)
    columns: dict[str, tuple[str, ...]]
    required: tuple[tuple[str, Any], ...]  # (field, message when its column is missing)
    checker: Any
    import_rows: Any
    template_headers: list[tuple[str, Any]]
    template_example: list[str]
    upload_url: str  # URL name of the kind's upload page
    list_url: str  # where the imported records are listed
    owner_note: Any = ""

    def header_lookup(self) -> dict[str, str]:
        return {
            _header_key(alias): name
            for name, aliases in self.columns.items()
            for alias in aliases
        }

    def check_columns(self, found: set[str]) -> None:
        for name, message in self.required:
            if name not in found:
                raise ValidationError(message)


CUSTOMERS = "customers"
KINDS: dict[str, ImportKind] = {}


def register_kind(kind: ImportKind) -> None:
    if kind.key == CUSTOMERS:
        raise ValueError("customers is this module's own kind")
    KINDS[kind.key] = kind


def may_import(by: Any, kind: str) -> bool:
    if kind == CUSTOMERS:
        return permissions.may(by, IMPORT_PERM)
    return kind in KINDS and by.has_perm(KINDS[kind].perm)


def _may_create(by: Any, kind: str) -> bool:
    if kind == CUSTOMERS:
        return by.has_perm("customers.add_customer")
    return by.has_perm(KINDS[kind].create_perm)
