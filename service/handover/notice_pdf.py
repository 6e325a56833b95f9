"""The printable 入伙通知书 as PDF: one page per unit (WeasyPrint, Noto CJK).

The fonts are Debian's fonts-noto-cjk, found by family name through fontconfig
("Noto Serif CJK SC", "Noto Sans CJK SC"); WeasyPrint itself needs pango
(libpango-1.0-0). A letter run prints its units into one file under
DATA_DIR/handover/notices/ at its end (service/handover/notices.py); one unit prints on
demand. Measured: docs/handover.md, "Notices".
"""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import segno
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from service.handover import links, notices
from service.handover.models import EventUnit, HandoverEvent, Notice, NoticeRun
from service.property.models import UnitOwnership

# Pages per part file: about 300 MB of layout at a time (1,000 pages at once took 1 GB).
PART_UNITS = 100
# A part of PART_UNITS pages takes well under a minute; the lease leaves room for a
# loaded machine.
RENDER_LEASE = dt.timedelta(minutes=5)


@dataclass
class Page:
    event_unit: EventUnit
    owners: list[str]
    days: tuple[dt.date, dt.date]
    url: str

    @property
    def days_text(self) -> str:
        return notices.day_range(*self.days)

    @property
    def qr_data_uri(self) -> str:
        # Vector, so it prints sharp at any size; the URL is encoded, never markup.
        return segno.make(self.url, error="m", boost_error=False).png_data_uri(
            scale=6, border=2
        )


def _owner_names(event_units: list[EventUnit]) -> dict[int, list[str]]:
    names: dict[int, list[tuple[bool, int, str]]] = {}
    rows = UnitOwnership.objects.filter(
        unit_id__in=[eu.unit_id for eu in event_units], is_active=True
    ).values_list("unit_id", "role", "pk", "customer__name")
    for unit_id, role, pk, name in rows:
        names.setdefault(unit_id, []).append(
            (role != UnitOwnership.Role.PRIMARY, pk, name)
        )
    return {unit: [n for *_, n in sorted(rows)] for unit, rows in names.items()}


def _pages(event: HandoverEvent, event_units: list[EventUnit], urls: dict) -> list:
    owners = _owner_names(event_units)
    days = {
        eu.batch_id: notices.batch_days(eu.batch, event)
        for eu in {eu.batch_id: eu for eu in event_units}.values()
    }
    return [
        Page(
            event_unit=eu,
            owners=owners.get(eu.unit_id, []),
            days=days[eu.batch_id],
            url=urls[eu.pk],
        )
        for eu in event_units
        if eu.pk in urls
    ]


def render(event: HandoverEvent, pages: list[Page]) -> bytes:
    from weasyprint import HTML  # heavy: loaded by the job or view that prints

    html = render_to_string(
        "handover/notices/notice_pdf.html",
        {
            "event": event,
            "project": notices.project_name(event),
            "pages": pages,
            "today": timezone.localdate(),
        },
    )
    return HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf()


def unit_pdf(*, by: Any, event_unit: EventUnit) -> bytes:
    """One unit's notice; the QR code is its primary owner's personal link (made now if
    the owner has none; an owner without a link is what a first notice fixes)."""
    notices._require(by)
    recipients = notices.recipients_by_unit([event_unit])[event_unit.pk]
    urls = {}
    if recipients:
        link = links.link_for(event_unit=event_unit, holder=recipients[0])
        urls[event_unit.pk] = links.url_for(link)
    else:
        urls[event_unit.pk] = ""
    return render(event_unit.event, _pages(event_unit.event, [event_unit], urls))


def run_pdf_path(run: NoticeRun) -> Path:
    return Path(settings.DATA_DIR) / "handover" / "notices" / f"run-{run.pk}.pdf"


def _parts_folder(run: NoticeRun) -> Path:
    return run_pdf_path(run).with_suffix(".parts")


def _write_atomically(path: Path, data: bytes) -> None:
    """A temporary file renamed into place: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.replace(temporary, path)


def _run_letters(run: NoticeRun) -> tuple[list[int], dict[int, str]]:
    """The run's units in print order (building, entrance, floor, room) and the URL
    of each one's first recipient's link (the primary owner's: made first)."""
    urls: dict[int, str] = {}
    letters = (
        Notice.objects.filter(run=run, link__isnull=False)
        .select_related("link")
        .order_by("event_unit_id", "pk")
    )
    for notice in letters:
        urls.setdefault(notice.event_unit_id, links.url_for(notice.link))
    order = list(
        EventUnit.objects.filter(pk__in=urls)
        .order_by(
            "unit__building__code", "unit__entrance", "unit__floor", "unit__room", "id"
        )
        .values_list("pk", flat=True)
    )
    return order, urls


def run_pdf_print(run: NoticeRun, *, deadline: float) -> bool:
    """Print the run's letters into one file, PART_UNITS pages at a time; True once the
    file is complete, False when `deadline` (time.monotonic()) came first.

    Each part is a file of its own, so memory stays bounded (WeasyPrint keeps every
    page's layout until it writes) and a job cut off continues with the next part;
    at the end the parts are joined (pypdf) into run-<id>.pdf. The run's letters do
    not change once its units are done, so the parts always cut the same list."""
    from pypdf import PdfWriter

    order, urls = _run_letters(run)
    folder = _parts_folder(run)
    parts = [order[i : i + PART_UNITS] for i in range(0, len(order), PART_UNITS)]
    drawn = 0
    for number, ids in enumerate(parts):
        part = folder / f"{number:05d}.pdf"
        if part.exists():
            continue
        if drawn and time.monotonic() > deadline:
            return False  # at least one part per call, so every call gets further
        # The run's lease covers the part being drawn (the watchdog waits for it).
        NoticeRun.objects.filter(pk=run.pk).update(
            lease_until=timezone.now() + RENDER_LEASE
        )
        rows = EventUnit.objects.select_related("unit__building", "batch").in_bulk(ids)
        event_units = [rows[pk] for pk in ids]
        _write_atomically(part, render(run.event, _pages(run.event, event_units, urls)))
        drawn += 1
    writer = PdfWriter()
    for number in range(len(parts)):
        writer.append(str(folder / f"{number:05d}.pdf"))
    out = io.BytesIO()
    writer.write(out)
    _write_atomically(run_pdf_path(run), out.getvalue())
    shutil.rmtree(folder, ignore_errors=True)
    return True
