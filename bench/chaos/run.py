"""`make chaos` and `make soak`: break the running stack on purpose, then count the damage.

    python -m bench.chaos chaos          # R1 + R2 + R6 at full size, C1, C6, R4, poison
    python -m bench.chaos chaos --scenarios poison   # one of them (r1, c1, c6, r4, poison)
    python -m bench.chaos soak           # SOAK_MINUTES (30) of steady load, R1/R2/R4/R5

Everything runs against processes this run starts (bench/chaos/harness.py) and is
measured at the end by SQL over the run's own database (bench/chaos/invariants.py). The
summary is printed, written to test-artifacts/chaos.json (soak.json), and the exit code
is 1 when any invariant fails. Scenario names follow docs/reliability.md and the
research note's §3.3 (R1-R8) and §3.2 (C1, C6).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.chaos import c6, harness
from bench.chaos.harness import LEASE_SECONDS, SWEEP_SECONDS, Stack, Ticker, log
from bench.chaos.load import POISON_LABEL
from bench.chaos.web import HttpLog, WebUser

REPO_DIR = harness.REPO_DIR
ARTIFACTS = REPO_DIR / "test-artifacts"
PASSWORD = "chaos-演练-Kehu-2026"  # noqa: S105 - a throw-away user in a throw-away database
OWNERS = 5
CUSTOMERS = 50
LOAD_PROCESSES = 4
PASSWORD_HASH = ""  # set by seed(): C6 makes its users with it
# R1's bound (reliability §3.3): a claim lost with a killed worker waits out its lease,
# then the next sweeps pick it up; 10 s for the restart and the queue.
LATENESS_BOUND = LEASE_SECONDS + 2 * SWEEP_SECONDS + 10
AFTER_OUTAGE_BOUND = (
    LEASE_SECONDS + 30
)  # R2: everything done this long after Redis is back
RESTART_BOUND = 3.0
SERVE_AGAIN_BOUND = 10.0  # R4


class Interrupted(Exception):
    pass


def _on_signal(signum: int, _frame: Any) -> None:
    raise Interrupted(signal.Signals(signum).name)


# --- Django in the driver --------------------------------------------------------------


def django_setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()


def db(fn: Any, *, tries: int = 60) -> Any:
    """Run a database read, reconnecting while PostgreSQL restarts (R4)."""
    from django.db import InterfaceError, OperationalError, connection

    for _ in range(tries):
        try:
            return fn()
        except (OperationalError, InterfaceError):
            connection.close()
            time.sleep(1)
    return fn()


def seed() -> dict[str, Any]:
    """Five salespeople of one team, ten customers each, made through the services."""
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group

    from crm.accounts.models import Department, Team, User
    from customers import services

    department = Department.objects.create(name="混沌演练部")
    team = Team.objects.create(name="混沌演练组", department=department)
    sales = Group.objects.get(name="sales")
    global PASSWORD_HASH
    hashed = PASSWORD_HASH = make_password(PASSWORD)  # once: the hasher is slow
    owners = []
    for i in range(OWNERS):
        user = User.objects.create(
            username=f"chaos_sales{i}",
            email=f"chaos_sales{i}@example.com",
            display_name=f"演练销售{i}",
            team=team,
            password=hashed,
        )
        user.groups.add(sales)
        owners.append(User.objects.get(pk=user.pk))
    customers = [
        services.customer_create(
            by=owners[i % OWNERS],
            data={"name": f"演练客户{i:03d}"},
            phone_numbers=[f"139{i:08d}"],
        )
        for i in range(CUSTOMERS)
    ]
    return {"owners": owners, "customers": customers}


# --- load ---------------------------------------------------------------------------------


class Creators:
    """LOAD_PROCESSES processes creating follow-ups through the service, due over a window."""

    def __init__(
        self,
        stack: Stack,
        count: int,
        t0: float,
        window: float,
        label: str,
        poison_every: int = 0,
    ):
        self.procs = [
            subprocess.Popen(  # noqa: S603 - fixed argv
                [sys.executable, "-m", "bench.chaos.load"]
                + ["--slice", str(k), "--slices", str(LOAD_PROCESSES)]
                + ["--count", str(count), "--t0", str(t0), "--window", str(window)]
                + ["--label", label, "--poison-every", str(poison_every)],
                cwd=REPO_DIR,
                env=stack.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for k in range(LOAD_PROCESSES)
        ]
        self.began = time.monotonic()

    def wait(self, timeout: float) -> dict[str, Any]:
        results, errors = [], []
        for proc in self.procs:
            try:
                out, err = proc.communicate(timeout=max(1, timeout))
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            if proc.returncode == 0 and out.strip():
                results.append(json.loads(out.strip().splitlines()[-1]))
            else:
                errors.append(err[-2000:])
        return {
            "created": sum(r["created"] for r in results),
            "created_after_due": sum(r["created_after_due"] for r in results),
            "creation_s": round(time.monotonic() - self.began, 1),
            # The slowest process's loop alone, without its Django start-up.
            "loop_s": max((r["seconds"] for r in results), default=None),
            "creator_errors": errors,
        }

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def calibrate(stack: Stack) -> float:
    """Follow-ups per second the creator processes manage together right now."""
    creators = Creators(stack, 400, time.time() + 120, 10, "calibration")
    results = creators.wait(timeout=300)
    return results["created"] / max(results["loop_s"] or results["creation_s"], 0.1)


class HttpPoster(Ticker):
    """A salesperson creating follow-ups through gunicorn; `burst` posts several a tick."""

    def __init__(self, user: WebUser, customer_ids: list[int], label: str) -> None:
        super().__init__("http-poster", 1.0, self.post)
        self.user = user
        self.customer_ids = customer_ids
        self.label = label
        self.burst = 1
        self.count = 0
        self.acknowledged: list[str] = []  # notes of creates that answered 302
        self.due_in = (5, 5)

    def post(self) -> None:
        from django.utils import timezone

        for _ in range(self.burst):
            self.count += 1
            customer_id = self.customer_ids[self.count % len(self.customer_ids)]
            due = timezone.localtime(
                timezone.now() + timedelta(seconds=random.uniform(*self.due_in))  # noqa: S311
            )
            note = f"{self.label}-HTTP-{self.count}"
            path = f"/customers/{customer_id}/followups/new/"
            status = self.user.post_form(
                path, {"note": note, "due_at": due.strftime("%Y-%m-%dT%H:%M:%S")}
            )
            if status == 302:
                self.acknowledged.append(note)


class HttpCustomerCreator(Ticker):
    """New customers through the form (R5: a gunicorn worker killed mid-request must
    leave no customer without its audit row)."""

    def __init__(self, user: WebUser, label: str) -> None:
        super().__init__("http-customer-creator", 2.0, self.post)
        self.user = user
        self.label = label
        self.count = 0
        self.acknowledged: list[str] = []

    def post(self) -> None:
        self.count += 1
        name = f"{self.label}客户{self.count:05d}"
        status = self.user.post_form(
            "/customers/new/",
            {
                "name": name,
                "kind": "owner",
                "stage": "lead",
                "tier": "C",
                "phone": f"137{os.getpid() % 1000:03d}{self.count:05d}",
                "id_number": "",
            },
        )
        if status == 302:
            self.acknowledged.append(name)


def customers_partly_written(acknowledged: list[str]) -> dict[str, int]:
    """R5's "0 partial writes": acknowledged creates that are missing, and customers
    without the audit (pghistory insert) row written in the same transaction."""
    from django.apps import apps
    from django.db import connection

    from customers.models import Customer

    event = next(
        m
        for m in apps.get_models()
        if getattr(m, "pgh_tracked_model", None) is Customer
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {Customer._meta.db_table} c WHERE NOT EXISTS "  # noqa: S608 - table names from the models
            f"(SELECT 1 FROM {event._meta.db_table} e "
            "WHERE e.pgh_obj_id = c.id AND e.pgh_label = 'insert')"
        )
        without_audit = cursor.fetchone()[0]
    present = Customer.objects.filter(name__in=acknowledged).count()
    return {
        "acknowledged": len(acknowledged),
        "acknowledged_missing": len(acknowledged) - present,
        "without_audit_row": without_audit,
    }


class PageReader(Ticker):
    def __init__(self, user: WebUser, customer_ids: list[int]) -> None:
        super().__init__("page-reader", 0.3, self.read)
        self.user = user
        self.customer_ids = customer_ids
        self.count = 0

    def read(self) -> None:
        self.count += 1
        paths = ["/", "/customers/", f"/customers/{random.choice(self.customer_ids)}/"]  # noqa: S311
        self.user.request(paths[self.count % len(paths)])


def web_user(stack: Stack, log_: HttpLog, username: str, customer_id: int) -> WebUser:
    user = WebUser(stack.base_url, log_)
    user.login(username, PASSWORD)
    user.form_token(f"/customers/{customer_id}/followups/new/")
    return user


# --- readiness ------------------------------------------------------------------------------


def wait_ready(stack: Stack, seeded: dict[str, Any], timeout: float = 180) -> float:
    """A canary follow-up due now comes through beat, sweep and worker; web answers."""
    from django.utils import timezone

    from crm.scheduler.models import ScheduledAction
    from customers import services

    owner, customer = seeded["owners"][0], seeded["customers"][0]
    began = time.monotonic()
    canary = services.followup_create(
        by=owner,
        customer=customer,
        assignee=owner,
        due_at=timezone.now(),
        note="canary",
    )
    done = harness.wait_for(
        lambda: ScheduledAction.objects.filter(
            target_id=canary.pk, kind=services.FOLLOWUP_REMINDER, state="done"
        ).exists(),
        timeout=timeout,
        interval=0.5,
    )
    if not done:
        raise RuntimeError(f"pipeline not ready after {timeout} s\n{stack.log_tails()}")
    if not harness.wait_for(
        lambda: harness.embedded.port_in_use(stack.http_port), timeout=60
    ):
        raise RuntimeError(f"gunicorn not listening\n{stack.log_tails()}")
    return round(time.monotonic() - began, 1)


# --- the scenarios -------------------------------------------------------------------------


def done_count() -> int:
    from crm.scheduler.models import ScheduledAction

    return db(lambda: ScheduledAction.objects.filter(state="done").count())


def open_due_count() -> int:
    """Actions due by now and not finished (the drain condition)."""
    from django.utils import timezone

    from crm.scheduler.models import ScheduledAction

    return db(
        lambda: (
            ScheduledAction.objects.filter(due_at__lte=timezone.now())
            .exclude(state__in=["done", "needs_review", "cancelled"])
            .count()
        )
    )


def wait_drained(timeout: float) -> bool:
    return harness.wait_for(lambda: open_due_count() == 0, timeout=timeout, interval=1)


def first_done_after(moment: float) -> float | None:
    from crm.scheduler.models import ScheduledAction

    first = db(
        lambda: (
            ScheduledAction.objects.filter(
                done_at__gt=datetime.fromtimestamp(moment, tz=UTC)
            )
            .order_by("done_at")
            .values_list("done_at", flat=True)
            .first()
        )
    )
    return round(first.timestamp() - moment, 2) if first else None


def sweeps_sent(stack: Stack, name: str) -> list[float]:
    """Wall-clock times at which beat `name` sent a sweep (its -l info log)."""
    path = stack.folder / f"{name}.log"
    if not path.exists():
        return []
    stamps = []
    pattern = re.compile(
        r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/MainProcess\] "
        r"Scheduler: Sending due task scheduled-actions-sweep"
    )
    for line in path.read_text(errors="replace").splitlines():
        match = pattern.match(line)
        if match:
            local = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
            stamps.append(time.mktime(local.timetuple()) + local.microsecond / 1e6)
    return stamps


def sleep_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)


def run_schedule(events: list[tuple[float, str, Any]]) -> None:
    for at, _name, action in sorted(events, key=lambda e: e[0]):
        sleep_until(at)
        action()


def Count(field: str) -> Any:  # noqa: N802 - Django's aggregate, imported late
    from django.db.models import Count as count

    return count(field)


def scenario_r1_r2_r6(
    stack: Stack, seeded: dict[str, Any], http_log: HttpLog, args: argparse.Namespace
) -> dict[str, Any]:
    """10,000 follow-ups due over 120 s; worker kill -9 every 20 s; Redis restarted
    empty once (10 s down) with HTTP creates during the outage; beat killed, then a
    second beat for 60 s."""
    assert stack.supervisor is not None
    sup = stack.supervisor
    n, window = args.followups, args.window
    rate = calibrate(stack)
    # All rows exist before the first falls due: creating them would otherwise take
    # the CPU the worker needs, and the run would measure the creators.
    lead = 30 + 1.2 * n / max(rate, 1)
    t0 = time.time() + lead
    log(
        f"R1: {n} follow-ups due over {window} s from t0 = now + {lead:.0f} s "
        f"(creators make {rate:.0f}/s together)"
    )
    creators = Creators(stack, n, t0, window, "R1")
    customer_ids = [c.pk for c in seeded["customers"]]
    user = web_user(stack, http_log, "chaos_sales0", customer_ids[0])
    poster = HttpPoster(user, customer_ids, "R2")
    figures: dict[str, Any] = {
        "followups": n,
        "window_s": window,
        "lead_s": round(lead, 1),
        "creator_rate_per_s": round(rate, 1),
        "kills": [],
    }
    outage: dict[str, float] = {}

    def kill_worker() -> None:
        done = done_count()
        pid = sup.kill9_from_pidfile("worker")
        figures["kills"].append({"at": time.time(), "pid": pid, "done_before": done})
        log(f"R1: kill -9 worker group {pid} ({done} delivered so far)")

    def redis_down() -> None:
        outage["down"] = time.time()
        stack.backing.redis.shutdown_nosave()
        poster.burst = 4
        log("R2: Redis SHUTDOWN NOSAVE")

    def redis_up() -> None:
        stack.backing.redis.start()
        outage["back"] = time.time()
        poster.burst = 1
        log("R2: Redis restarted empty")

    def kill_beat() -> None:
        figures["beat_kill"] = {
            "at": time.time(),
            "pid": sup.kill9_from_pidfile("beat"),
        }
        log("R6: kill -9 beat")

    def second_beat_on() -> None:
        figures["second_beat_from"] = time.time()
        stack.add_second_beat()
        log("R6: a second beat runs on purpose")

    def second_beat_off() -> None:
        sup.remove("beat2")
        figures["second_beat_until"] = time.time()
        log("R6: second beat stopped")

    queue: list[list[Any]] = []

    def sample_queue() -> None:
        import redis

        from crm.scheduler.models import ScheduledAction

        try:
            depth = redis.Redis.from_url(
                stack.backing.redis.url, socket_timeout=1
            ).llen("celery")
        except redis.RedisError:
            depth = None
        states = dict(
            db(
                lambda: list(
                    ScheduledAction.objects.values_list("state").annotate(n=Count("id"))
                )
            )
        )
        queue.append([round(time.time() - t0, 1), depth, states])

    sampler = Ticker("queue-sampler", 2.0, sample_queue)
    sampler.start()
    events: list[tuple[float, str, Any]] = []
    offset = args.kill_every / 2
    while offset < window:
        events.append((t0 + offset, "kill", kill_worker))
        offset += args.kill_every
    redis_at = window * 0.45
    events += [
        (t0 + redis_at, "redis-down", redis_down),
        (t0 + redis_at + args.redis_down, "redis-up", redis_up),
        (t0 + window / 3, "beat-kill", kill_beat),
        (t0 + window * 0.6, "beat2-on", second_beat_on),
        (t0 + window * 0.6 + args.second_beat, "beat2-off", second_beat_off),
    ]
    poster.start()
    try:
        run_schedule(events)
        created = creators.wait(timeout=600)
        figures.update(created)
        log(f"R1: created {created['created']} in {created['creation_s']} s")
        # Under a backlog the drain is slow, not lossy: wait, and let lateness tell.
        drained = wait_drained(timeout=LEASE_SECONDS + 1200)
    finally:
        poster.stop()
        sampler.stop()
        creators.kill()
    drained = drained and wait_drained(timeout=LEASE_SECONDS + 60)
    figures["queue_samples"] = queue
    figures["max_queue_length"] = max((q[1] or 0 for q in queue), default=None)
    figures["drained"] = drained
    figures["http_posts"] = poster.count
    figures["http_acknowledged"] = poster.acknowledged
    figures["redis_down_at"] = outage.get("down")
    figures["redis_back_at"] = outage.get("back")
    figures["restart_latencies_s"] = [round(x, 2) for x in sup.restart_latencies]
    figures["delivering_again_after_kill_s"] = [
        first_done_after(kill["at"]) for kill in figures["kills"]
    ]
    beat_kill = figures.get("beat_kill", {}).get("at")
    sends = sweeps_sent(stack, "beat")
    after = [s - beat_kill for s in sends if beat_kill and s > beat_kill]
    figures["sweeps_resumed_after_beat_kill_s"] = (
        round(min(after), 2) if after else None
    )
    beat2 = sweeps_sent(stack, "beat2")
    figures["sweeps_sent_by_second_beat"] = len(beat2)
    figures["worker_alive_at_end"] = sup.alive("worker")
    figures["beat_alive_at_end"] = sup.alive("beat")
    figures["restarts"] = dict(sup.restarts)
    return figures


def scenario_c1(seeded: dict[str, Any], rounds: int, n: int = 50) -> dict[str, Any]:
    """`rounds` times: n threads book n customers into one capacity-5 slot at once."""
    from django.db import connection
    from django.utils import timezone

    from service.handover.models import HandoverEvent, TimeSlot
    from service.handover.services import SlotFull, appointment_book

    capacity = 5
    booker = seeded["owners"][0]
    customers = seeded["customers"][:n]
    if len(customers) < n:
        raise RuntimeError(f"C1 needs {n} customers")
    start = threading.Barrier(n + 1)
    end = threading.Barrier(n + 1)
    current: dict[str, Any] = {}
    outcomes: list[list[str]] = [[] for _ in range(n)]

    def booker_thread(i: int) -> None:
        try:
            for _ in range(rounds):
                start.wait()
                try:
                    appointment_book(
                        slot=current["slot"], customer=customers[i], by=booker
                    )
                    outcomes[i].append("booked")
                except SlotFull:
                    outcomes[i].append("full")
                except Exception as error:  # noqa: BLE001 - every other answer is a finding
                    outcomes[i].append(f"{type(error).__name__}: {error}"[:200])
                end.wait()
        finally:
            connection.close()

    threads = [
        threading.Thread(target=booker_thread, args=(i,), daemon=True) for i in range(n)
    ]
    for thread in threads:
        thread.start()
    day = timezone.localdate() + timedelta(days=30)
    began = time.monotonic()
    rounds_ok = 0
    other: dict[str, int] = {}
    for r in range(rounds):
        event = HandoverEvent.objects.create(
            name=f"演练入伙 {r}",
            project_name="演练项目",
            venue="演练售楼处",
            start_date=day,
            end_date=day,
            status=HandoverEvent.Status.PUBLISHED,
            created_by=booker,
        )
        current["slot"] = TimeSlot.objects.create(
            event=event,
            date=day,
            start_time=datetime.strptime("09:00", "%H:%M").time(),
            end_time=datetime.strptime("09:30", "%H:%M").time(),
            capacity=capacity,
        )
        start.wait()
        end.wait()
        results = [outcome[r] for outcome in outcomes]
        booked = results.count("booked")
        full = results.count("full")
        for result in results:
            if result not in ("booked", "full"):
                other[result] = other.get(result, 0) + 1
        if booked == capacity and full == n - capacity:
            rounds_ok += 1
    for thread in threads:
        thread.join(timeout=30)
    return {
        "rounds": rounds,
        "threads": n,
        "capacity": capacity,
        "rounds_exactly_capacity": rounds_ok,
        "other_outcomes": other,
        "seconds": round(time.monotonic() - began, 1),
    }


def scenario_r4(
    stack: Stack, seeded: dict[str, Any], http_log: HttpLog, args: argparse.Namespace
) -> dict[str, Any]:
    """PostgreSQL `stop -m immediate` for 15 s under follow-up load and web requests."""
    count, window, down_for = args.r4_followups, 60, args.pg_down
    rate = calibrate(stack)
    lead = 15 + 1.3 * count / max(rate, 1)
    t0 = time.time() + lead
    creators = Creators(stack, count, t0, window, "R4")
    created = creators.wait(timeout=600)  # all rows exist before the crash
    customer_ids = [c.pk for c in seeded["customers"]]
    user = web_user(stack, http_log, "chaos_sales1", customer_ids[1])
    poster = HttpPoster(user, customer_ids, "R4")
    # A signed-in page needs the database (the session lives there).
    probe_log = HttpLog()
    prober = WebUser(stack.base_url, probe_log, timeout=10)
    prober.login("chaos_sales2", PASSWORD)
    figures: dict[str, Any] = {"followups": count, **created}
    sleep_until(t0 + 15)
    poster.start()
    time.sleep(3)
    figures["crash_at"] = time.time()
    stack.backing.pg_crash()
    log("R4: PostgreSQL stopped with -m immediate")
    prober_stop = threading.Event()

    def probe() -> None:
        while not prober_stop.is_set():
            prober.request("/customers/")
            time.sleep(0.5)

    probe_thread = threading.Thread(target=probe, daemon=True)
    probe_thread.start()
    time.sleep(down_for)
    stack.backing.pg_start()
    figures["back_at"] = back = time.time()
    log("R4: PostgreSQL started again")
    served = harness.wait_for(
        lambda: any(a.status == 200 and a.at >= back for a in probe_log.snapshot()),
        timeout=60,
        interval=0.2,
    )
    first_ok = min(
        (
            a.at + a.seconds
            for a in probe_log.snapshot()
            if a.status == 200 and a.at >= back
        ),
        default=None,
    )
    figures["served_again_after_s"] = (
        round(first_ok - back, 2) if served and first_ok else None
    )
    time.sleep(5)
    poster.stop()
    prober_stop.set()
    probe_thread.join(timeout=15)
    during = [
        a
        for a in probe_log.snapshot() + http_log.snapshot()
        if figures["crash_at"] <= a.at <= back
    ]
    figures["requests_during_outage"] = len(during)
    figures["slowest_answer_during_outage_s"] = max(
        (a.seconds for a in during), default=None
    )
    figures["http_acknowledged"] = poster.acknowledged
    figures["drained"] = wait_drained(timeout=LEASE_SECONDS + 120)
    figures["worker_alive_at_end"] = stack.supervisor.alive("worker")
    figures["beat_alive_at_end"] = stack.supervisor.alive("beat")
    return figures


def poisoned_states() -> dict[str, Any]:
    """The poisoned reminders (bench/chaos/poison.py): how many in each state, and
    their attempts."""
    from django.db.models import Max, Min

    from crm.scheduler.models import ScheduledAction
    from customers.models import FollowUp
    from customers.services import FOLLOWUP_REMINDER

    def read() -> dict[str, Any]:
        targets = FollowUp.objects.filter(note__startswith=f"{POISON_LABEL} ")
        actions = ScheduledAction.objects.filter(
            kind=FOLLOWUP_REMINDER, target_id__in=targets.values("pk")
        )
        states = dict(
            actions.values_list("state").annotate(n=Count("id")).order_by("state")
        )
        attempts = actions.aggregate(low=Min("attempts"), high=Max("attempts"))
        return {
            "followups": targets.count(),
            "states": states,
            "min_attempts": attempts["low"],
            "max_attempts": attempts["high"],
        }

    return db(read)


def scenario_poison(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """10,000 follow-up reminders due over 120 s, 1 % of them poisoned (their reminder
    raises every time, alone or in its batch); no other fault. The healthy ones must be
    delivered as on a quiet day, the poisoned ones parked as needs_review after
    KEHU_ACTION_MAX_ATTEMPTS deliveries."""
    from django.conf import settings

    n, window, every = args.poison_followups, args.window, args.poison_every
    # The stack is shared with the scenarios before this one (R1 kills the worker):
    # count only this scenario's restarts.
    restarts_before = stack.supervisor.restarts.get("worker", 0)
    rate = calibrate(stack)
    lead = 30 + 1.2 * n / max(rate, 1)
    t0 = time.time() + lead
    log(
        f"poison: {n} follow-ups due over {window} s, every {every}th poisoned, from "
        f"t0 = now + {lead:.0f} s (creators make {rate:.0f}/s together)"
    )
    creators = Creators(stack, n, t0, window, "P", poison_every=every)
    created = creators.wait(timeout=600)
    log(f"poison: created {created['created']} in {created['creation_s']} s")
    sleep_until(t0 + window)
    drained = wait_drained(timeout=LEASE_SECONDS + 600)
    # Back-off: base x (2 + 4 + ... + 2^6), each at most 30 x base, then parked.
    base = float(stack.env["KEHU_ACTION_BACKOFF_SECONDS"])
    attempts = settings.KEHU_ACTION_MAX_ATTEMPTS
    backoff = sum(min(30 * base, base * 2**k) for k in range(1, attempts))
    parked_by = base + backoff + attempts * (LEASE_SECONDS + 2 * SWEEP_SECONDS)

    def all_parked() -> bool:
        now = poisoned_states()
        return now["states"].get("needs_review", 0) == now["followups"]

    parked = harness.wait_for(all_parked, timeout=parked_by + 120, interval=2)
    figures: dict[str, Any] = {
        "followups": n,
        "poison_every": every,
        "window_s": window,
        "lead_s": round(lead, 1),
        "creator_rate_per_s": round(rate, 1),
        **created,
        "drained": drained,
        "all_poisoned_parked": parked,
        "parked_s_after_window": round(time.time() - t0 - window, 1),
        "parked_bound_s": round(parked_by, 1),
        "backoff_base_s": base,
        "max_attempts_setting": attempts,
        "poisoned": poisoned_states(),
        "worker_alive_at_end": stack.supervisor.alive("worker"),
        "worker_restarts": stack.supervisor.restarts.get("worker", 0) - restarts_before,
    }
    return figures


# --- soak ---------------------------------------------------------------------------------


class ServiceCreator(Ticker):
    """Follow-ups through the service from the driver, due 5-60 s after creation."""

    def __init__(
        self, seeded: dict[str, Any], per_tick: int, label: str = "soak"
    ) -> None:
        super().__init__("service-creator", 1.0, self.create)
        self.seeded = seeded
        self.label = label
        self.per_tick = per_tick
        self.count = 0
        self.failed = 0

    def create(self) -> None:
        from django.db import connection
        from django.utils import timezone

        from customers import services

        for _ in range(self.per_tick):
            self.count += 1
            customer = self.seeded["customers"][self.count % CUSTOMERS]
            try:
                services.followup_create(
                    by=customer.owner,
                    customer=customer,
                    assignee=customer.owner,
                    due_at=timezone.now() + timedelta(seconds=random.uniform(5, 60)),  # noqa: S311
                    note=f"{self.label} 回访 #{self.count}",
                )
            except Exception:  # noqa: BLE001 - PostgreSQL down (R4): counted, not fatal
                self.failed += 1
                connection.close()


class Booker(Ticker):
    """Eight bookings at once into a fresh capacity-5 slot, every few seconds."""

    def __init__(self, seeded: dict[str, Any]) -> None:
        super().__init__("booker", 5.0, self.round)
        self.seeded = seeded
        self.rounds = 0
        self.results: dict[str, int] = {}

    def round(self) -> None:
        from django.db import connection

        try:
            figures = scenario_c1(self.seeded, rounds=1, n=8)
        except Exception as error:  # noqa: BLE001 - PostgreSQL down (R4)
            key = type(error).__name__
            self.results[key] = self.results.get(key, 0) + 1
            connection.close()
            return
        self.rounds += 1
        for outcome, times in figures["other_outcomes"].items():
            self.results[outcome] = self.results.get(outcome, 0) + times


def scenario_soak(
    stack: Stack, seeded: dict[str, Any], http_log: HttpLog, args: argparse.Namespace
) -> dict[str, Any]:
    assert stack.supervisor is not None
    sup = stack.supervisor
    duration = args.soak_minutes * 60
    customer_ids = [c.pk for c in seeded["customers"]]
    poster = HttpPoster(
        web_user(stack, http_log, "chaos_sales0", customer_ids[0]), customer_ids, "soak"
    )
    poster.due_in = (5, 60)
    reader = PageReader(
        web_user(stack, http_log, "chaos_sales1", customer_ids[1]), customer_ids
    )
    creator = ServiceCreator(seeded, per_tick=args.soak_rate)
    customer_creator = HttpCustomerCreator(
        web_user(stack, http_log, "chaos_sales2", customer_ids[2]), "soak"
    )
    booker = Booker(seeded)
    samples: list[dict[str, Any]] = []

    def sample() -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity")
            connections = cursor.fetchone()[0]
        samples.append(
            {
                "at": time.time(),
                "worker_start": sup.children["worker"].starts,
                "worker_started_at": sup.started_at("worker"),
                "worker_rss_kb": stack.worker_rss_kb(),
                "pg_connections": connections,
                "load1": os.getloadavg()[0],
            }
        )

    sampler = Ticker("sampler", 5.0, lambda: db(sample, tries=1))
    figures: dict[str, Any] = {"minutes": args.soak_minutes, "gunicorn_kills": []}
    windows: list[tuple[float, float, str]] = []
    start = time.time()

    def kill_gunicorn_worker() -> None:
        figures["gunicorn_kills"].append(
            {"at": time.time(), "pid": stack.kill_gunicorn_worker()}
        )

    def kill_worker() -> None:
        figures.setdefault("worker_kills", []).append(
            {"at": time.time(), "pid": sup.kill9_from_pidfile("worker")}
        )
        log("soak R1: kill -9 worker")

    def redis_outage() -> None:
        down = time.time()
        stack.backing.redis.shutdown_nosave()
        log("soak R2: Redis down")
        time.sleep(args.redis_down)
        stack.backing.redis.start()
        windows.append((down, time.time(), "redis"))
        figures["quiet_from"] = time.time() + 30
        log("soak R2: Redis back, empty")

    def pg_outage() -> None:
        if stack.backing.pg is None:
            figures["r4_skipped"] = "DATABASE_URL names an outside server"
            return
        down = time.time()
        stack.backing.pg_crash()
        log("soak R4: PostgreSQL stopped -m immediate")
        time.sleep(args.pg_down)
        stack.backing.pg_start()
        back = time.time()
        # Requests that reached a broken connection fail until the app reconnects.
        windows.append((down, back + SERVE_AGAIN_BOUND, "postgres"))
        figures["quiet_from"] = back + 30
        log("soak R4: PostgreSQL back")

    events: list[tuple[float, str, Any]] = []
    t = 30.0
    while t < duration:
        events.append((start + t, "R5", kill_gunicorn_worker))
        t += 30
    events += [
        (start + duration * 0.15, "R1", kill_worker),
        (start + duration * 0.30, "R1", kill_worker),
        (start + duration * 0.40, "R2", redis_outage),
        (start + duration * 0.55, "R4", pg_outage),
    ]
    for ticker in (poster, reader, creator, customer_creator, booker, sampler):
        ticker.start()
    log(f"soak: {args.soak_minutes} min of load with R1/R2/R4/R5 on schedule")
    try:
        run_schedule(events)
        sleep_until(start + duration)
    finally:
        for ticker in (poster, reader, creator, customer_creator, booker):
            ticker.stop()
    figures["drained"] = wait_drained(timeout=LEASE_SECONDS + 300)
    sampler.stop()
    figures.update(
        outage_windows=[{"from": a, "to": b, "what": w} for a, b, w in windows],
        http_posts=poster.count,
        http_acknowledged=poster.acknowledged,
        page_reads=reader.count,
        service_creates=creator.count,
        service_create_failures=creator.failed,
        customer_creates=db(
            lambda: customers_partly_written(customer_creator.acknowledged)
        ),
        booking_rounds=booker.rounds,
        booking_other_outcomes=booker.results,
        samples=samples,
        sampler_errors=sampler.errors[:5],
        restarts=dict(sup.restarts),
        restart_latencies_s=[round(x, 2) for x in sup.restart_latencies],
        worker_alive_at_end=sup.alive("worker"),
        beat_alive_at_end=sup.alive("beat"),
        web_alive_at_end=sup.alive("web"),
    )
    return figures


# --- facts, report --------------------------------------------------------------------------


def facts(stack: Stack) -> dict[str, Any]:
    from django.db import connection

    from bench.run import git_facts, machine_facts

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
        cursor.execute("SHOW max_connections")
        max_connections = int(cursor.fetchone()[0])
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        **git_facts(),
        **machine_facts(),
        "postgres": version,
        "postgres_embedded": stack.backing.pg is not None,
        "max_connections": max_connections,
        "sweep_s": SWEEP_SECONDS,
        "lease_s": LEASE_SECONDS,
        "worker_concurrency": 2,
    }


def write_report(name: str, report: dict[str, Any]) -> Path:
    from bench.chaos.invariants import table

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.json"
    path.write_text(
        json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n",
        encoding="utf-8",
    )
    sys.stdout.write("\n" + table(report["checks"]) + "\n")
    sys.stdout.write(f"written to {path}\n")
    return path


def run(args: argparse.Namespace) -> int:
    from bench.chaos import invariants

    folder = Path(tempfile.mkdtemp(prefix=f"kehu-{args.mode}-"))
    stack: Stack | None = None
    previous = {
        sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)
    }
    outcome = 1
    try:
        log(f"run folder {folder}")
        stack = harness.start_stack(folder)
        log(f"PostgreSQL {stack.backing.database_url}, Redis {stack.backing.redis.url}")
        wanted = {name.strip().lower() for name in args.scenarios.split(",")}
        if args.mode == "chaos" and "poison" in wanted:
            # The worker wraps the follow-up reminder kind (bench/chaos/poison.py);
            # back-off in seconds, not minutes, as the lease and sweep are shortened.
            stack.worker_include = ("bench.chaos.poison",)
            stack.env["KEHU_ACTION_BACKOFF_SECONDS"] = str(args.poison_backoff)
        harness.manage(stack.env, "migrate", "--no-input", "-v", "0")
        django_setup(stack.env)
        seeded = seed()
        stack.start_apps()
        ready_s = wait_ready(stack, seeded)
        log(f"worker, beat and gunicorn ready in {ready_s} s")
        report: dict[str, Any] = {
            "mode": args.mode,
            "facts": facts(stack),
            "ready_s": ready_s,
        }
        http_log = HttpLog()
        if args.mode == "chaos":
            if "r1" in wanted:
                report["R1_R2_R6"] = scenario_r1_r2_r6(stack, seeded, http_log, args)
            if "c1" in wanted and args.c1_rounds:
                log(f"C1: {args.c1_rounds} rounds of 50 bookings into 5 seats")
                report["C1"] = scenario_c1(seeded, args.c1_rounds)
            if "c6" in wanted and args.c6_minutes:
                report["C6"] = c6.scenario_c6(
                    stack, seeded, http_log, args.c6_minutes, PASSWORD, PASSWORD_HASH
                )
            if "r4" in wanted and stack.backing.pg is not None and args.pg_down:
                report["R4"] = scenario_r4(stack, seeded, http_log, args)
            if "poison" in wanted:
                report["poison"] = scenario_poison(stack, args)
        else:
            report["soak"] = scenario_soak(stack, seeded, http_log, args)
        report["facts"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        report["http"] = invariants.http_summary(http_log.snapshot(), report)
        report["invariants"] = db(lambda: invariants.measure(stack))
        report["checks"] = invariants.checks(report)
        write_report(args.mode, report)
        outcome = 0 if all(c["ok"] for c in report["checks"]) else 1
    except (KeyboardInterrupt, Interrupted) as stop:
        log(f"interrupted ({stop or 'Ctrl-C'}); stopping everything")
        outcome = 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if stack is not None:
            try:
                stack.keep_logs(ARTIFACTS / f"{args.mode}-logs")
            except OSError:
                pass
            log("stopping worker, beat, gunicorn, Redis and PostgreSQL")
            stack.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return outcome


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos")
    parser.add_argument("mode", choices=["chaos", "soak"])
    parser.add_argument("--followups", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=120)
    parser.add_argument("--kill-every", type=float, default=20)
    parser.add_argument("--redis-down", type=float, default=10)
    parser.add_argument("--second-beat", type=float, default=60)
    parser.add_argument("--c1-rounds", type=int, default=200)
    parser.add_argument("--pg-down", type=float, default=15)
    parser.add_argument("--r4-followups", type=int, default=600)
    parser.add_argument("--c6-minutes", type=float, default=5)
    parser.add_argument(
        "--scenarios",
        default="r1,c1,c6,r4,poison",
        help="chaos mode: which of r1 (with R2, R6), c1, c6, r4, poison to run, "
        "in that order",
    )
    parser.add_argument("--poison-followups", type=int, default=10_000)
    parser.add_argument(
        "--poison-every", type=int, default=100, help="1 in N reminders poisoned"
    )
    parser.add_argument(
        "--poison-backoff",
        type=float,
        default=1.0,
        help="KEHU_ACTION_BACKOFF_SECONDS for the run (production default 10)",
    )
    parser.add_argument(
        "--soak-minutes",
        type=float,
        default=float(os.environ.get("SOAK_MINUTES", "30")),
    )
    parser.add_argument("--soak-rate", type=int, default=2, help="follow-ups/s")
    return run(parser.parse_args(argv))
