"""Customer export to CSV and XLSX: the user's own list, masked, bounded and audited.

The rows come from the list page's selector, so an export never holds a customer the
user could not open. Phones are masked unless the role may see personal data; ID
numbers are always masked. Cells a spreadsheet would run as a formula get a leading
apostrophe (CSV/formula injection, OWASP).

Controls on bulk copies (GB/T 35273-2020 §7.1, docs/security.md):
* Up to KEHU_EXPORT_APPROVAL_ROWS rows the file is built at once, in memory; more rows
  become an ExportRequest that another manager or admin approves, after which a Celery
  task writes the file under KEHU_DATA_DIR/exports and the requester downloads it once,
  within KEHU_EXPORT_DOWNLOAD_HOURS; the file is deleted as it is handed out.
* Every file handed out is logged (audit.EXPORTED) with its row count and SHA-256
  before the first byte leaves.
* At most KEHU_EXPORT_DAILY_LIMIT exports per user per local day, counted from those
  log rows; the first refusal of the day notifies every admin.
"""

from __future__ import annotations

import csv
import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from crm.core import audit
from crm.core.models import AccessLog
from customers import masking, permissions
from customers.models import Customer, ExportRequest

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


def customers_export(*, by: Any, customers: QuerySet) -> Export:
    """The export's rows (header first), to be written to a file.

    `customers` must already be the user's visible list (selectors.customer_list).
    Nothing is logged here: the log row names the finished file's SHA-256.
    """
    if not permissions.may(by, EXPORT_PERM):
        raise PermissionDenied
    row_count, is_capped = count_bounded(customers)
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


# --- the file, its digest and the log ---------------------------------------------------


CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def write_file(rows: Iterable[list[str]], file_format: str, handle: IO[bytes]) -> None:
    """The whole export into `handle` (a binary file), CSV or XLSX."""
    if file_format == "xlsx":
        with xlsx_file(rows, title=_("客户")) as built:
            shutil.copyfileobj(built, handle)
    else:
        for chunk in csv_chunks(rows):
            handle.write(chunk.encode("utf-8"))


def sha256_of(handle: IO[bytes]) -> str:
    handle.seek(0)
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 16), b""):
        digest.update(block)
    handle.seek(0)
    return digest.hexdigest()


def log_export(
    request: Any,
    *,
    by: Any,
    row_count: int,
    sha256: str,
    file_format: str,
    description: str,
    export_request: ExportRequest | None = None,
) -> None:
    """The one log row of a file handed out: rows, format, SHA-256 and the filters."""
    audit.record(
        request,
        audit.EXPORTED,
        user=by,
        object_type="customer",
        object_id=export_request.pk if export_request else None,
        row_count=row_count,
        detail=f"sha256={sha256}; {file_format}; {description}",
    )


# --- how many exports a user may make -----------------------------------------------------


def approval_rows() -> int:
    return settings.KEHU_EXPORT_APPROVAL_ROWS


def daily_limit() -> int:
    return settings.KEHU_EXPORT_DAILY_LIMIT


def exports_today(user: Any) -> int:
    """Files handed to `user` since local midnight, counted from the audit log."""
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return AccessLog.objects.filter(
        user=user, action=audit.EXPORTED, outcome=audit.OK, created_at__gte=midnight
    ).count()


def check_daily_limit(request: Any, *, by: Any) -> None:
    """ValidationError once `by` has had today's exports; the first refusal of the day
    tells every admin (one notification each, whatever the number of refusals)."""
    limit = daily_limit()
    if exports_today(by) < limit:
        return
    audit.record(
        request,
        audit.EXPORTED,
        user=by,
        object_type="customer",
        outcome=audit.DENIED,
        detail=f"daily limit {limit}",
    )
    _alert_admins(by=by, limit=limit)
    raise ValidationError(
        _("您今天已导出 %(limit)s 次，达到每日上限，请明天再导出或联系管理员。")
        % {"limit": limit}
    )


def _alert_admins(*, by: Any, limit: int) -> None:
    from django.contrib.auth import get_user_model

    from crm.accounts.roles import Role
    from crm.notifications.services import notification_send

    day = timezone.localdate().isoformat()
    admins = get_user_model().objects.filter(is_active=True, groups__name=Role.ADMIN)
    for admin in admins.distinct():
        notification_send(
            recipient=admin,
            key=f"export-daily-limit:{by.pk}:{day}:{admin.pk}",
            title=_("导出次数达到上限：%(user)s") % {"user": by},
            body=_(
                "%(user)s 今天已导出 %(limit)s 次，之后的导出被拒绝。请确认是否正常。"
            )
            % {"user": by, "limit": limit},
            reason=gettext_noop("你是管理员"),
            group=f"export-daily-limit:{day}",
            actor=by,
        )


# --- an export handed out at once (up to approval_rows) -----------------------------------


@dataclass
class BuiltExport:
    content: bytes
    row_count: int
    sha256: str
    file_format: str


def export_now(
    request: Any, *, by: Any, customers: QuerySet, file_format: str, description: str
) -> BuiltExport:
    """Build a small export in memory and log it; bigger ones need an ExportRequest."""
    if not permissions.may(by, EXPORT_PERM):
        raise PermissionDenied
    if count_bounded(customers)[0] > approval_rows():
        raise ValidationError(
            _("超过 %(rows)s 行的导出需要另一位经理或管理员审批。")
            % {"rows": approval_rows()}
        )
    check_daily_limit(request, by=by)
    with transaction.atomic():
        # One export at a time per user, so parallel requests cannot pass the limit.
        get_user_model().objects.select_for_update(no_key=True).filter(pk=by.pk).first()
        if exports_today(by) >= daily_limit():
            built = None
        else:
            export = customers_export(by=by, customers=customers)
            with tempfile.TemporaryFile() as handle:
                write_file(export.rows, file_format, handle)
                sha256 = sha256_of(handle)
                content = handle.read()
            log_export(
                request,
                by=by,
                row_count=export.row_count,
                sha256=sha256,
                file_format=file_format,
                description=description,
            )
            built = BuiltExport(content, export.row_count, sha256, file_format)
    if built is None:
        check_daily_limit(request, by=by)  # records the refusal and raises
    return built


# --- an export that waits for approval ------------------------------------------------------


def export_root() -> Path:
    return Path(settings.EXPORT_ROOT)


def export_request_create(
    request: Any,
    *,
    by: Any,
    filters: dict[str, str],
    summary: str,
    row_count: int,
    file_format: str,
    reason: str,
) -> ExportRequest:
    """Ask for an export of more than approval_rows rows; a second person decides."""
    if not permissions.may(by, EXPORT_PERM):
        raise PermissionDenied
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("请说明导出原因。")})
    check_daily_limit(request, by=by)
    export_request = ExportRequest.objects.create(
        requested_by=by,
        filters=filters,
        filter_summary=summary[:500],
        file_format=file_format,
        row_count=row_count,
        reason=reason[:300],
    )
    audit.record(
        request,
        audit.EXPORT_REQUESTED,
        user=by,
        obj=export_request,
        row_count=row_count,
        detail=reason,
    )
    _tell_approvers(export_request)
    return export_request


def _tell_approvers(export_request: ExportRequest) -> None:
    """A notification to everyone who may decide the request: admins, and managers
    who see the requester's requests (the same scope as the 导出审批 page)."""
    from django.contrib.auth import get_user_model

    from crm.accounts.roles import Role
    from crm.notifications.services import notification_send

    requester = export_request.requested_by
    people = (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[Role.MANAGER, Role.ADMIN])
        .exclude(pk=requester.pk)
        .select_related("team")
        .distinct()
    )
    for person in people:
        if (
            not ExportRequest.objects.visible_to(person)
            .filter(pk=export_request.pk)
            .exists()
        ):
            continue
        notification_send(
            recipient=person,
            key=f"export-request:{export_request.pk}:{person.pk}",
            title=_("导出待审批：%(user)s 申请导出 %(rows)s 位客户")
            % {"user": requester, "rows": export_request.row_count},
            body=export_request.reason,
            url=export_request.get_absolute_url(),
            reason=gettext_noop("你可以审批这项导出"),
            actor=requester,
        )


def export_request_decide(
    request: Any, *, by: Any, export_request: ExportRequest, approve: bool, note: str
) -> ExportRequest:
    """Approve (the file is then built by a task) or reject a pending request.

    Never by the requester; an approver must be able to see every customer in it.
    """
    from customers.selectors import customers_of_request

    if not by.has_perm(EXPORT_PERM):
        raise PermissionDenied
    with transaction.atomic():
        locked = ExportRequest.objects.select_for_update(no_key=True).get(
            pk=export_request.pk
        )
        if locked.requested_by_id == by.pk:
            raise ValidationError(
                _("不能审批自己的导出申请，请由另一位经理或管理员审批。")
            )
        if locked.status != ExportRequest.Status.PENDING:
            raise ValidationError(
                _("该申请已处理（%(status)s），无需再审批。")
                % {"status": locked.get_status_display()}
            )
        if approve:
            requested = customers_of_request(locked)
            if requested is None:
                raise ValidationError(_("申请中的筛选条件已失效，只能拒绝。"))
            unseen = requested.order_by().exclude(
                pk__in=Customer.objects.visible_to(by).values("pk")
            )
            if unseen.exists():
                raise ValidationError(
                    _(
                        "该导出包含您无权查看的客户，您不能审批，请由有权查看这些客户的经理或管理员审批。"
                    )
                )
        locked.status = (
            ExportRequest.Status.APPROVED if approve else ExportRequest.Status.REJECTED
        )
        locked.decided_by = by
        locked.decided_at = timezone.now()
        locked.decision_note = note.strip()[:300]
        locked.queued_at = locked.decided_at if approve else None
        locked.save(
            update_fields=[
                "status",
                "decided_by",
                "decided_at",
                "decision_note",
                "queued_at",
            ]
        )
        audit.record(
            request,
            audit.EXPORT_APPROVED if approve else audit.EXPORT_REJECTED,
            user=by,
            obj=locked,
            row_count=locked.row_count,
            detail=locked.decision_note,
        )
        if approve:
            # robust: a broker that is down must not undo the approval; the request's
            # page queues it again (export_request_kick).
            transaction.on_commit(lambda: _enqueue_produce(locked.pk), robust=True)
    return locked


def _enqueue_produce(request_id: int) -> None:
    from customers import tasks

    tasks.export_request_produce_task.delay(request_id)


PROGRESS_EVERY = 500
# A building task holds the request this long, renewed every PROGRESS_EVERY rows.
LEASE = timedelta(minutes=2)
# An approved request no task has taken for this long is queued again.
REQUEUE_AFTER = timedelta(seconds=60)


def export_request_kick(*, export_request: ExportRequest) -> bool:
    """Queue an approved request again when no worker holds it and none was asked to
    for a while: a broker restarted empty, a publish that failed, a worker killed."""
    if export_request.status != ExportRequest.Status.APPROVED:
        return False
    now = timezone.now()
    requeued = (
        ExportRequest.objects.filter(
            pk=export_request.pk, status=ExportRequest.Status.APPROVED
        )
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=now - REQUEUE_AFTER))
        .update(queued_at=now)
    )
    if requeued:
        transaction.on_commit(lambda: _enqueue_produce(export_request.pk), robust=True)
    return bool(requeued)


def export_request_produce(*, request_id: int) -> ExportRequest | None:
    """Build the approved file under KEHU_DATA_DIR/exports (the Celery task's work).

    A run takes the request by writing a lease and its own random file name; a
    duplicated task finds the lease held and does nothing, a run whose worker died is
    taken over once its lease has run out, and only the run whose file name is on the
    request may finish it. The rows are read again through the requester's visible
    list: someone who lost sight of a customer since asking does not get it.
    """
    from customers.selectors import customers_of_request

    now = timezone.now()
    pending = ExportRequest.objects.filter(
        pk=request_id, status=ExportRequest.Status.APPROVED
    )
    earlier = pending.values_list("file_name", "file_format").first()
    if earlier is None:
        return None
    file_name = f"{secrets.token_hex(16)}.{earlier[1]}"
    claimed = pending.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    ).update(lease_until=now + LEASE, file_name=file_name, rows_written=0)
    if not claimed:
        return None
    root = export_root()
    root.mkdir(parents=True, exist_ok=True)
    if earlier[0]:  # what a dead run left behind
        (root / earlier[0]).with_suffix(".part").unlink(missing_ok=True)
    export_request = ExportRequest.objects.select_related("requested_by").get(
        pk=request_id
    )
    customers = customers_of_request(export_request)
    if customers is None:
        return _produce_failed(export_request, _("筛选条件已失效。"))
    export = customers_export(by=export_request.requested_by, customers=customers)
    path = root / file_name
    partial = path.with_suffix(".part")
    mine = ExportRequest.objects.filter(
        pk=request_id, status=ExportRequest.Status.APPROVED, file_name=file_name
    )
    with partial.open("wb") as handle:
        write_file(_counting(export.rows, mine), export_request.file_format, handle)
        handle.flush()
        os.fsync(handle.fileno())
    with partial.open("rb") as handle:
        sha256 = sha256_of(handle)
    partial.rename(path)
    now = timezone.now()
    finished = mine.update(
        status=ExportRequest.Status.PRODUCED,
        rows_written=export.row_count,
        produced_rows=export.row_count,
        sha256=sha256,
        lease_until=None,
        produced_at=now,
        expires_at=now + timedelta(hours=settings.KEHU_EXPORT_DOWNLOAD_HOURS),
    )
    if not finished:  # another run took over meanwhile: its file counts, not this one
        path.unlink(missing_ok=True)
        return None
    export_request.refresh_from_db()
    return export_request


def _counting(rows: Iterator[list[str]], mine: QuerySet) -> Iterator[list[str]]:
    """The rows as they are; every PROGRESS_EVERY rows the progress is written and the
    lease renewed."""
    written = -1  # the header
    for row in rows:
        yield row
        written += 1
        if written and written % PROGRESS_EVERY == 0:
            mine.update(rows_written=written, lease_until=timezone.now() + LEASE)


def _produce_failed(export_request: ExportRequest, message: str) -> ExportRequest:
    ExportRequest.objects.filter(pk=export_request.pk).update(
        status=ExportRequest.Status.FAILED, error=message[:300], lease_until=None
    )
    export_request.refresh_from_db()
    return export_request


def export_requests_expire() -> int:
    """Files not downloaded in time are deleted and their requests marked expired."""
    stale = list(
        ExportRequest.objects.filter(
            status=ExportRequest.Status.PRODUCED, expires_at__lt=timezone.now()
        ).values_list("pk", "file_name")
    )
    for pk, file_name in stale:
        (export_root() / file_name).unlink(missing_ok=True)
        ExportRequest.objects.filter(
            pk=pk, status=ExportRequest.Status.PRODUCED
        ).update(status=ExportRequest.Status.EXPIRED)
    return len(stale)


@dataclass
class Handout:
    handle: IO[bytes]
    file_format: str
    sha256: str


def export_request_download(
    request: Any, *, by: Any, export_request: ExportRequest
) -> Handout:
    """The approved file, once, to its requester only; logged with its SHA-256.

    The file is unlinked as it is opened: the open handle still reads it, and nobody can
    fetch it a second time.
    """
    if export_request.requested_by_id != by.pk:
        raise PermissionDenied
    export_requests_expire()
    with transaction.atomic():
        locked = ExportRequest.objects.select_for_update(no_key=True).get(
            pk=export_request.pk
        )
        if locked.status != ExportRequest.Status.PRODUCED:
            raise ValidationError(
                _("该导出当前不可下载（%(status)s）。")
                % {"status": locked.get_status_display()}
            )
        path = export_root() / locked.file_name
        try:
            handle = path.open("rb")
        except FileNotFoundError as error:
            locked.status = ExportRequest.Status.FAILED
            locked.error = "file missing"
            locked.save(update_fields=["status", "error"])
            raise ValidationError(_("导出文件已不存在，请重新申请。")) from error
        sha256 = sha256_of(handle)
        if sha256 != locked.sha256:
            handle.close()
            raise ValidationError(_("导出文件校验失败，请重新申请。"))
        locked.status = ExportRequest.Status.DOWNLOADED
        locked.downloaded_at = timezone.now()
        locked.save(update_fields=["status", "downloaded_at"])
        log_export(
            request,
            by=by,
            row_count=locked.produced_rows or 0,
            sha256=sha256,
            file_format=locked.file_format,
            description=f"request {locked.pk}; {locked.filter_summary}",
            export_request=locked,
        )
        transaction.on_commit(lambda: path.unlink(missing_ok=True))
    return Handout(handle, locked.file_format, sha256)
