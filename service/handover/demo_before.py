"""入伙 before the day, demo data (called by service/handover/demo.py's `seed_demo`).

One concentrated handover of the property demo's project (澜湾花园, 1,000 units in 10
buildings, service/property/demo.py), all through the real services: the whole project
in scope, a few units not eligible, three batches with their own booking windows and
slots (10 % of each slot held for walk-ins), the SMS notices of the first two batches
(written as their runs leave them, see `_notify`), half the units booked — most by their owners through their
links, some by the call centre — and a few calls from the call list. The third batch is
not notified yet, so 交付准备 and 待联系业主 have something to show.

Idempotent: nothing is added once the event exists. Times are then moved back (notices
sent 6 and 3 days ago, bookings made since), as the deals demo dates its deals: the
services stamp "now", the story needs days.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
from typing import Any

from django.utils import timezone

from crm.channels.models import OutboundMessage
from service.handover import calls, links, notices, scope, services
from service.handover.models import (
    Appointment,
    Batch,
    EventUnit,
    HandoverEvent,
    Notice,
    NoticeRun,
    OwnerLink,
    TimeSlot,
)
from service.property.models import Project

DEMO_EVENT = "澜湾花园一期 集中交付"
# (name, buildings, days of the event it is handed over on, notice sent days ago)
BATCHES = [
    ("第一批（1–4栋）", ("1", "2", "3", "4"), (0, 1), 6),
    ("第二批（5–8栋）", ("5", "6", "7", "8"), (1, 2), 3),
    ("第三批（9–10栋）", ("9", "10"), (3,), None),
]
EVENT_DAYS = 4
STARTS_IN_DAYS = 12
SLOT_CAPACITY = 30
WALK_IN_PERCENT = 10
BOOKED_SHARE = 0.62  # of the notified batches' eligible units: half the project
BY_CALL_CENTRE = 0.2  # of those bookings; the rest by the owners through their link


def seed_before_the_day(users: dict[str, Any], *, project_code: str, seed: int) -> str:
    project = Project.objects.filter(code=project_code).first()
    if project is None or HandoverEvent.objects.filter(name=DEMO_EVENT).exists():
        return ""
    admin, desk = users["admin"], users["service1"]
    rng = random.Random(seed + 15)  # noqa: S311 - demo data, not security
    event = _event(admin, project)
    scope.scope_add(by=admin, event=event)
    _not_eligible(admin, event, rng)
    batches = _batches(admin, event)
    services.event_publish(by=admin, event=event)
    sent = _notify(admin, event, batches)
    booked = _book(desk, event, batches, rng)
    _calls(desk, event)
    return (
        f"handover event with {EventUnit.objects.filter(event=event).count()} units, "
        f"{sent} notices, {booked} bookings"
    )


def _event(admin: Any, project: Project) -> HandoverEvent:
    start = timezone.localdate() + dt.timedelta(days=STARTS_IN_DAYS)
    return services.event_save(
        by=admin,
        data={
            "name": DEMO_EVENT,
            "kind": HandoverEvent.Kind.CONCENTRATED,
            "project": project,
            "project_name": project.name,
            "venue": "澜湾花园会所一层交付中心",
            "start_date": start,
            "end_date": start + dt.timedelta(days=EVENT_DAYS - 1),
            "owner_cutoff_hours": 24,
            "walk_in_release_time": dt.time(12, 0),
        },
    )


def _not_eligible(admin: Any, event: HandoverEvent, rng: random.Random) -> None:
    ids = list(
        EventUnit.objects.filter(event=event)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    chosen = rng.sample(ids, k=len(ids) * 3 // 100)
    half = len(chosen) // 2
    scope.eligibility_set(
        by=admin,
        event=event,
        event_unit_ids=chosen[:half],
        eligibility=EventUnit.Eligibility.ARREARS,
        note="购房尾款未结清",
    )
    scope.eligibility_set(
        by=admin,
        event=event,
        event_unit_ids=chosen[half:],
        eligibility=EventUnit.Eligibility.NOT_READY,
        note="分户验收整改未完成",
    )


def _batches(admin: Any, event: HandoverEvent) -> list[Batch]:
    buildings = {
        b.code: b.pk
        for b in event.project.phases.get(code="1").buildings.all()  # type: ignore[union-attr]
    }
    now = timezone.now()
    made = []
    for name, codes, days, sent_days_ago in BATCHES:
        opens = now - dt.timedelta(days=sent_days_ago or 0, hours=1)
        if sent_days_ago is None:
            opens = now + dt.timedelta(days=2)
        # Booking closes at 18:00 the evening before the batch's first day.
        closes = timezone.make_aware(
            dt.datetime.combine(
                event.start_date + dt.timedelta(days=days[0] - 1), dt.time(18, 0)
            )
        )
        batch = scope.batch_save(
            by=admin,
            event=event,
            data={"name": name, "booking_opens_at": opens, "booking_closes_at": closes},
        )
        chosen = [buildings[c] for c in codes if c in buildings]
        if chosen:  # a smaller demo project (the seed tests) has fewer buildings
            scope.batch_assign_units(by=admin, batch=batch, building_ids=chosen)
        for day in days:
            scope.batch_slots_add_day(
                by=admin,
                batch=batch,
                date=event.start_date + dt.timedelta(days=day),
                start_time=dt.time(9, 0),
                end_time=dt.time(17, 0),
                interval_minutes=60,
                capacity=SLOT_CAPACITY,
                walk_in_percent=WALK_IN_PERCENT,
            )
        made.append(batch)
    return made


def _notify(admin: Any, event: HandoverEvent, batches: list[Batch]) -> int:
    """The SMS notices of the notified batches, as their runs would have left them:
    one finished NoticeRun per batch, and per owner their live link (as link_for),
    the message the run queues (notices.notice_text, the run's idempotency key), sent
    and handed to the recording backend, and the notice delivered.

    Written in bulk rather than by running notices.notice_run_advance and the
    pipeline's delivery: those took about 100 ms an owner here (85 s for the demo),
    most of it the per-message scheduled action and its delivery.
    """
    sent = 0
    for batch, (_name, _codes, _days, days_ago) in zip(batches, BATCHES, strict=True):
        if days_ago is None:
            continue
        when = timezone.now() - dt.timedelta(days=days_ago)
        units = list(
            notices.scope_of(event=event, batch=batch)
            .select_related("unit__building__phase__project", "batch", "event")
            .order_by("pk")
        )
        plan = notices.Preview()
        planned = notices._plan_chunk(
            units, channel=notices.Channel.SMS, round=1, into=plan
        )
        run = NoticeRun.objects.create(
            event=event,
            batch=batch,
            channel=notices.Channel.SMS,
            state=NoticeRun.State.DONE,
            total=len(units),
            done=len(units),
            skipped=sum(plan.skipped.values()),
            skip_reasons=dict(plan.skipped),
            cursor=units[-1].pk if units else 0,
            created_by=admin,
            finished_at=when,
        )
        days = notices.batch_days(batch, event)
        # Each holder's live link, as links.link_for makes it (the demo's are new).
        made = OwnerLink.objects.bulk_create(
            OwnerLink(
                event_unit=eu,
                holder=person,
                nonce=secrets.token_urlsafe(12),
                expires_at=links._expiry_for(eu),
            )
            for eu, person, _address in planned
        )
        rows = []
        for (eu, person, address), link in zip(planned, made, strict=True):
            _subject, body = notices.notice_text(
                eu, person, link, channel=notices.Channel.SMS, days=days
            )
            key = f"handover-notice:{eu.pk}:{person.pk}:sms:1"
            message = OutboundMessage(
                channel=OutboundMessage.Channel.SMS,
                to=address,
                body=body,
                purpose=notices.PURPOSE,
                idempotency_key=key,
                state=OutboundMessage.State.SENT,
                attempts=1,
                provider_id=key,
                sent_at=when,
            )
            rows.append((eu, person, link, message))
        OutboundMessage.objects.bulk_create([m for *_rest, m in rows])
        Notice.objects.bulk_create(
            Notice(
                event_unit=eu,
                recipient=person,
                channel=notices.Channel.SMS,
                round=1,
                state=Notice.State.DELIVERED,
                run=run,
                link=link,
                message=message,
                sent_at=when,
                delivered_at=when,
                created_by=admin,
            )
            for eu, person, link, message in rows
        )
        NoticeRun.objects.filter(pk=run.pk).update(created_at=when)
        sent += len(rows)
    return sent


def _book(
    desk: Any, event: HandoverEvent, batches: list[Batch], rng: random.Random
) -> int:
    notified = [b for b, spec in zip(batches, BATCHES, strict=True) if spec[3]]
    units = list(
        EventUnit.objects.filter(
            batch__in=notified, eligibility=EventUnit.Eligibility.ELIGIBLE
        )
        .select_related("unit__building", "batch")
        .order_by("pk")
    )
    chosen = rng.sample(units, k=int(len(units) * BOOKED_SHARE))
    links = {
        n.event_unit_id: n.link
        for n in Notice.objects.filter(event_unit__in=chosen, link__isnull=False)
        .select_related("link__holder")
        .order_by("pk")
    }
    slots: dict[int, list[TimeSlot]] = {
        b.pk: list(b.slots.order_by("date", "start_time")) for b in notified
    }
    booked = 0
    for n, event_unit in enumerate(chosen):
        options = slots[event_unit.batch_id]
        link = links.get(event_unit.pk)
        by_owner = link is not None and rng.random() >= BY_CALL_CENTRE
        for offset in range(len(options)):
            slot = options[(n + offset) % len(options)]
            try:
                services.appointment_book(
                    slot=slot,
                    customer=link.holder if by_owner else _primary(event_unit),
                    by=None if by_owner else desk,
                    unit=event_unit.unit.label,
                    channel=Appointment.Channel.OWNER_LINK
                    if by_owner
                    else Appointment.Channel.PHONE,
                    event_unit=event_unit,
                    via_link=link if by_owner else None,
                )
            except services.SlotFull:
                continue
            booked += 1
            break
    _spread_booking_days(event, rng)
    return booked


def _primary(event_unit: EventUnit) -> Any:
    return event_unit.unit.ownerships.get(is_active=True, role="primary").customer


def _spread_booking_days(event: HandoverEvent, rng: random.Random) -> None:
    """Owners book over the days after their notice, most in the first two."""
    now = timezone.now()
    sent = dict(
        Notice.objects.filter(event_unit__event=event, sent_at__isnull=False)
        .values_list("event_unit_id", "sent_at")
        .order_by("event_unit_id", "-sent_at")
        .distinct("event_unit_id")
    )
    appointments = list(
        Appointment.objects.filter(event=event).only("pk", "event_unit", "created_at")
    )
    for appointment in appointments:
        notice_at = sent.get(appointment.event_unit_id)
        if notice_at is not None:
            hours = (now - notice_at).total_seconds() / 3600
            delay = min(hours - 1, rng.expovariate(1 / 30))
            appointment.created_at = notice_at + dt.timedelta(hours=delay)
    Appointment.objects.bulk_update(appointments, ["created_at"], batch_size=500)


def _calls(desk: Any, event: HandoverEvent) -> None:
    """A few calls from the call list, logged on the owners' timelines."""
    from service.handover import readiness

    outcomes = ["no_answer", "later", "no_answer", "wrong_number", "refused"]
    units = list(readiness.call_list(event)[: len(outcomes) * 3])
    for n, event_unit in enumerate(units):
        calls.owner_call_record(
            by=desk,
            event_unit=event_unit,
            customer=_primary(event_unit),
            outcome=outcomes[n % len(outcomes)],
            note="" if n % 3 else "业主出差，下周回来",
        )
