"""入伙通知 at size: an SMS run and a letter run (with its PDF) over `units` units.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kehu_x \
    .venv/bin/python -m bench.handover_notices [units]

Builds one event of `units` units (default 1,000) with one owner each, in one
transaction that is rolled back at the end (the database is left as it was); SMS are
recorded and the PDF written under a temporary folder. Runs the real services as the
task would (`notice_run_advance` until done), delivers the messages as the pipeline
would (sweep + deliver), and prints the times, the peak memory and the PDF's size and
pages (docs/handover.md, "Notices").
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import sys
import tempfile
import time

import django


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def peak_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def build(units: int) -> tuple[object, object]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from customers.models import Customer
    from service.handover.models import EventUnit, HandoverEvent
    from service.property.models import Building, Phase, Project, Unit, UnitOwnership

    user = get_user_model().objects.create(username="bench_notices")
    user.groups.add(Group.objects.get(name="manager"))
    user = get_user_model().objects.get(pk=user.pk)
    start = timezone.localdate() + dt.timedelta(days=20)
    project = Project.objects.create(code="BENCH-N", name="基准花园")
    phase = Phase.objects.create(project=project, code="P1", name="一期")
    event = HandoverEvent.objects.create(
        name="基准通知",
        project=project,
        project_name=project.name,
        venue="基准花园会所",
        start_date=start,
        end_date=start + dt.timedelta(days=2),
        status="published",
        created_by=user,
    )
    buildings = [
        Building.objects.create(phase=phase, code=str(b), name=f"{b}栋")
        for b in range(1, 11)
    ]
    rows = [
        Unit(
            building=buildings[n % 10],
            entrance="1",
            floor=1 + (n // 10) % 30,
            room=f"{n:05d}",
            code=f"BENCH-N-{n}",
        )
        for n in range(units)
    ]
    Unit.objects.bulk_create(rows, batch_size=1000)
    owners = Customer.objects.bulk_create(
        [Customer(name=f"业主{n}", phone=f"139{n:08d}") for n in range(units)],
        batch_size=1000,
    )
    UnitOwnership.objects.bulk_create(
        [UnitOwnership(unit=u, customer=c) for u, c in zip(rows, owners, strict=True)],
        batch_size=1000,
    )
    EventUnit.objects.bulk_create(
        [EventUnit(event=event, unit=u) for u in rows], batch_size=1000
    )
    return user, event


def run(by: object, event: object, channel: str) -> object:
    from service.handover import notices
    from service.handover.models import NoticeRun

    started = time.monotonic()
    notice_run = notices.notice_run_start(by=by, event=event, channel=channel)
    while notice_run.state != NoticeRun.State.DONE:
        notices.notice_run_advance(run_id=notice_run.pk)
        notice_run.refresh_from_db()
    say(
        f"{channel} run: {notice_run.done} units, {notice_run.notices.count()} "
        f"notices in {time.monotonic() - started:.1f} s (peak {peak_mb()} MB)"
    )
    return notice_run


def deliver() -> None:
    from crm.channels.backends import RecordingSmsBackend
    from crm.scheduler import services as scheduler

    started, delivered = time.monotonic(), 0
    while ids := scheduler.actions_sweep():
        delivered += sum(bool(scheduler.action_deliver(action_id=pk)) for pk in ids)
    say(
        f"delivered {delivered} actions in {time.monotonic() - started:.1f} s; "
        f"{len(RecordingSmsBackend().recorded())} SMS recorded"
    )


def main() -> None:
    units = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000
    folder = tempfile.mkdtemp(prefix="kehu-bench-notices-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.dev")
    os.environ["KEHU_DATA_DIR"] = folder
    os.environ["KEHU_SMS_FILE_PATH"] = os.path.join(folder, "sms")
    os.environ["KEHU_SMS_BACKEND"] = "crm.channels.backends.RecordingSmsBackend"
    django.setup()
    from django.db import transaction
    from pypdf import PdfReader

    from service.handover import notice_pdf

    with transaction.atomic():
        started = time.monotonic()
        by, event = build(units)
        say(f"built {units} units in {time.monotonic() - started:.1f} s")
        run(by, event, "sms")
        deliver()
        letters = run(by, event, "letter")
        path = notice_pdf.run_pdf_path(letters)
        pages = len(PdfReader(path).pages)
        say(f"PDF: {pages} pages, {path.stat().st_size / 1e6:.1f} MB")
        transaction.set_rollback(True)


if __name__ == "__main__":
    main()
