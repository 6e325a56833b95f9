"""The printable 入伙通知书 as PDF: one page per unit (WeasyPrint, Noto CJK).

The fonts are Debian's fonts-noto-cjk, found by family name through fontconfig
("Noto Serif CJK SC", "Noto Sans CJK SC"); WeasyPrint itself needs pango
(libpango-1.0-0). A letter run prints its units into one file under
DATA_DIR/handover/notices/ at its end (service/handover/notices.py); one unit prints on
demand. Measured (docs/handover.md): 1,000 pages in one file take about a minute.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
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
        return segno.make(self.url, error="m").svg_data_uri(scale=4, border=2)


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


def run_pdf_write(run: NoticeRun) -> Path:
    """Print the letters of `run`'s round: one page per unit that has a letter of this
    round, the QR code of its first recipient's link. Written to a temporary file and
    renamed, so the download never sees half a file; a rerun overwrites it."""
    letters = (
        Notice.objects.filter(
            event_unit__in=notices.scope_of(event=run.event, batch=run.batch),
            channel=NoticeRun.Channel.LETTER,
            round=run.round,
            link__isnull=False,
        )
        .select_related("link")
        .order_by("event_unit_id", "pk")
    )
    urls: dict[int, str] = {}
    for notice in letters:
        urls.setdefault(notice.event_unit_id, links.url_for(notice.link))
    event_units = list(
        EventUnit.objects.filter(pk__in=urls)
        .select_related("unit__building", "batch")
        .order_by("unit__building__code", "unit__entrance", "unit__floor", "unit__room")
    )
    data = render(run.event, _pages(run.event, event_units, urls))
    path = run_pdf_path(run)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.replace(temporary, path)
    return path
