"""The printable 入伙通知书 (service/handover/notice_pdf.py): one page per unit, in
Chinese (Noto CJK through WeasyPrint), with the personal booking link as text and QR."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from service.handover import links, notice_pdf, notices
from service.handover.models import NoticeRun
from tests.handover.notice_builders import (
    make_batch,
    make_units,
    notice_pdf_folder,  # noqa: F401
)

pytestmark = pytest.mark.django_db


def pdf_pages(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def test_a_letter_run_prints_its_batch_as_one_file_one_page_per_unit(
    new_event, manager
):
    event = new_event()
    batch = make_batch(event, "一号楼批次")
    units = make_units(event, count=3, batch=batch, co_owners=1)
    make_units(event, count=2)  # not in the batch
    run = notices.notice_run_start(
        by=manager, event=event, batch=batch, channel="letter"
    )
    notices.notice_run_advance(run_id=run.pk, chunks=100)
    run.refresh_from_db()
    assert run.state == NoticeRun.State.DONE

    pages = pdf_pages(notice_pdf.run_pdf_path(run).read_bytes())
    assert len(pages) == 3
    # Printed in the order a courier walks: building, entrance, floor, room (the
    # builder's floors follow a counter shared with the tests that ran before).
    printed = sorted(
        units,
        key=lambda eu: (
            eu.unit.building.code,
            eu.unit.entrance,
            eu.unit.floor,
            eu.unit.room,
            eu.pk,
        ),
    )
    for eu, text in zip(printed, pages, strict=True):
        flat = "".join(text.split())
        assert "入伙通知书" in flat and "翠湖花园" in flat
        assert eu.unit.label in flat
        owners = eu.unit.ownerships.order_by("-role").values_list(
            "customer__name", flat=True
        )
        assert all(name in flat for name in owners)
        assert "一号楼批次" in flat and "翠湖花园会所一楼" in flat
        assert "身份证" in flat and "物业服务费" in flat
        # The personal link as text (the QR code holds the same URL).
        link = run.notices.filter(event_unit=eu).order_by("pk").first().link
        assert links.token_for(link).split(":")[0] in flat


def test_one_unit_prints_on_its_own_with_its_primary_owner_s_link(new_event, manager):
    event = new_event()
    (eu,) = make_units(event, count=1, co_owners=1)
    data = notice_pdf.unit_pdf(by=manager, event_unit=eu)
    (text,) = pdf_pages(data)
    primary = eu.unit.ownerships.get(role="primary").customer
    link = eu.owner_links.get()
    assert link.holder == primary
    assert links.token_for(link).split(":")[0] in "".join(text.split())
    # The QR code is drawn as an image on the page.
    reader = PdfReader(io.BytesIO(data))
    assert "/XObject" in reader.pages[0]["/Resources"] or b"/Image" in data


def test_printing_needs_a_manager_or_an_admin(new_event, sales_rep):
    event = new_event()
    (eu,) = make_units(event, count=1)
    with pytest.raises(notices.PermissionDenied):
        notice_pdf.unit_pdf(by=sales_rep, event_unit=eu)


def test_a_big_batch_prints_in_parts_across_task_runs_into_one_file(
    new_event, manager, monkeypatch
):
    monkeypatch.setattr(notice_pdf, "PART_UNITS", 2)
    monkeypatch.setattr(notices, "SLICE_SECONDS", 0)  # one part per task run
    event = new_event()
    make_units(event, count=5)
    run = notices.notice_run_start(by=manager, event=event, channel="letter")
    runs = 0
    while run.state != NoticeRun.State.DONE:
        notices.notice_run_advance(run_id=run.pk)
        run.refresh_from_db()
        runs += 1
        assert runs < 10
    assert runs == 3  # the letters and the first part, then one part each
    path = notice_pdf.run_pdf_path(run)
    assert len(pdf_pages(path.read_bytes())) == 5
    assert not path.with_suffix(".parts").exists()
