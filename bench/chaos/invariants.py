"""The invariant checker (reliability §3.3): SQL over the run's database, at the end.

lost        actions due more than lease + 30 s ago that are not done / needs_review
duplicates  notifications per idempotency key (UNIQUE, so 0 by construction) and, the
            real test, e-mail attempts per key in the fake provider's append-only log
lateness    done_at - the follow-up's own due_at (an action's due_at moves on retry)
overbooked  slots with booked_count > capacity or != COUNT(active appointments)
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.chaos.harness import LEASE_SECONDS, SWEEP_SECONDS, Stack
from bench.chaos.web import Answer
from crm.scheduler.testing import read_mail_log

LOST_GRACE = LEASE_SECONDS + 30
LATENESS_BOUND = LEASE_SECONDS + 2 * SWEEP_SECONDS + 10
AFTER_OUTAGE_BOUND = LEASE_SECONDS + 30
RESTART_BOUND = 3.0
SERVE_AGAIN_BOUND = 10.0
FAIL_FAST_BOUND = 5.0


def _rows(sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def measure(stack: Stack) -> dict[str, Any]:
    from crm.notifications.models import Notification
    from crm.scheduler.models import ScheduledAction
    from customers.models import FollowUp
    from customers.services import FOLLOWUP_REMINDER

    action = ScheduledAction._meta.db_table
    followup = FollowUp._meta.db_table
    notification = Notification._meta.db_table
    figures: dict[str, Any] = {}

    ((lost_all, open_all),) = _rows(
        f"SELECT count(*) FILTER (WHERE due_at < now() - make_interval(secs => %s)),"  # noqa: S608 - table names from the models
        f" count(*) FROM {action} WHERE state NOT IN ('done','needs_review','cancelled')",
        [LOST_GRACE],
    )
    figures["lost_actions_all_kinds"] = lost_all
    figures["unfinished_actions_all_kinds"] = open_all

    # Per load: R1 / R2 (HTTP during the Redis outage) / R4 / soak / calibration / canary.
    per_load = _rows(
        f"""
        SELECT split_part(split_part(f.note, ' ', 1), '-', 1) AS load,
               count(*),
               count(a.id),
               count(*) FILTER (WHERE a.state = 'done'),
               count(*) FILTER (WHERE a.state = 'needs_review'),
               count(*) FILTER (WHERE f.due_at < now() - make_interval(secs => %s)
                                AND (a.state IS NULL
                                     OR a.state NOT IN ('done', 'needs_review'))),
               count(*) FILTER (WHERE f.created_at > f.due_at),
               max(extract(epoch FROM a.done_at - f.due_at)),
               percentile_cont(0.5) WITHIN GROUP
                   (ORDER BY extract(epoch FROM a.done_at - f.due_at)),
               percentile_cont(0.95) WITHIN GROUP
                   (ORDER BY extract(epoch FROM a.done_at - f.due_at)),
               percentile_cont(0.99) WITHIN GROUP
                   (ORDER BY extract(epoch FROM a.done_at - f.due_at)),
               coalesce(sum(greatest(a.attempts - 1, 0)), 0),
               max(a.attempts)
        FROM {followup} f
        LEFT JOIN {action} a ON a.kind = %s AND a.target_id = f.id
        GROUP BY 1 ORDER BY 1
        """,  # noqa: S608 - table names from the models
        [LOST_GRACE, FOLLOWUP_REMINDER],
    )
    loads = {}
    for row in per_load:
        (name, count, with_action, done, review, lost, late_created) = row[:7]
        (max_late, p50, p95, p99, redeliveries, max_attempts) = row[7:]
        loads[name] = {
            "followups": count,
            "missing_actions": count - with_action,
            "done": done,
            "needs_review": review,
            "lost": lost,
            "created_after_due": late_created,
            "max_lateness_s": _round(max_late),
            "p50_lateness_s": _round(p50),
            "p95_lateness_s": _round(p95),
            "p99_lateness_s": _round(p99),
            "redeliveries": redeliveries,
            "max_attempts": max_attempts,
        }
    figures["followups_by_load"] = loads

    ((notifications, distinct_keys, not_emailed),) = _rows(
        f"SELECT count(*), count(DISTINCT idempotency_key),"  # noqa: S608 - table names from the models
        f" count(*) FILTER (WHERE emailed_at IS NULL)"
        f" FROM {notification} WHERE idempotency_key LIKE 'followup:%%'"
    )
    ((missing_notifications,),) = _rows(
        f"SELECT count(*) FROM {action} a WHERE a.kind = %s AND a.state = 'done'"  # noqa: S608 - table names from the models
        f" AND NOT EXISTS (SELECT 1 FROM {notification} n"
        f" WHERE n.idempotency_key = a.idempotency_key)",
        [FOLLOWUP_REMINDER],
    )
    notified_keys = {
        key
        for (key,) in _rows(
            f"SELECT idempotency_key FROM {notification}"  # noqa: S608 - table names from the models
            f" WHERE idempotency_key LIKE 'followup:%%'"
        )
    }
    attempts, torn = read_mail_log(stack.mail_log)
    per_key = Counter(r["key"] for r in attempts if r["key"].startswith("followup:"))
    figures.update(
        notifications=notifications,
        duplicate_notifications=notifications - distinct_keys,
        missing_notifications=missing_notifications,
        not_emailed=not_emailed,
        email_attempts=sum(per_key.values()),
        missing_emails=len(notified_keys - set(per_key)),
        duplicate_email_attempts=sum(n - 1 for n in per_key.values()),
        keys_emailed_more_than_once=sum(1 for n in per_key.values() if n > 1),
        torn_mail_log_lines=torn,
    )
    figures["slots"] = _slots()
    return figures


def _slots() -> dict[str, Any]:
    try:
        from service.handover.models import Appointment, TimeSlot
    except ImportError:
        return {"checked": False}
    slot, appointment = TimeSlot._meta.db_table, Appointment._meta.db_table
    active = [str(s) for s in Appointment.ACTIVE_STATES]
    ((slots, overbooked, miscounted, booked),) = _rows(
        f"""
        SELECT count(*),
               count(*) FILTER (WHERE s.booked_count > s.capacity),
               count(*) FILTER (WHERE s.booked_count <> (
                   SELECT count(*) FROM {appointment} ap
                   WHERE ap.slot_id = s.id AND ap.state = ANY(%s))),
               coalesce(sum(s.booked_count), 0)
        FROM {slot} s
        """,  # noqa: S608 - table names from the models
        [active],
    )
    return {
        "checked": True,
        "slots": slots,
        "overbooked": overbooked,
        "booked_count_not_active_count": miscounted,
        "seats_booked": booked,
    }


def _round(value: Any) -> float | None:
    return round(float(value), 2) if value is not None else None


# --- HTTP ------------------------------------------------------------------------------------


def _windows(report: dict[str, Any]) -> list[tuple[float, float, str]]:
    """Times when PostgreSQL was down (and the reconnect grace): 500s are expected there."""
    windows = []
    r4 = report.get("R4")
    if r4 and r4.get("crash_at"):
        windows.append((r4["crash_at"], r4["back_at"] + SERVE_AGAIN_BOUND, "postgres"))
    for window in report.get("soak", {}).get("outage_windows", []):
        if window["what"] == "postgres":
            windows.append((window["from"], window["to"], "postgres"))
    return windows


def http_summary(answers: list[Answer], report: dict[str, Any]) -> dict[str, Any]:
    windows = _windows(report)

    def inside(answer: Answer) -> bool:
        # A request in flight when PostgreSQL stopped counts as inside too.
        return any(
            answer.at <= b and answer.at + answer.seconds >= a for a, b, _ in windows
        )

    statuses = Counter(a.status for a in answers)
    outside = [a for a in answers if not inside(a)]
    summary: dict[str, Any] = {
        "requests": len(answers),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "server_errors_outside_db_outage": sum(1 for a in outside if a.status >= 500),
        "no_answer_outside_db_outage": sum(1 for a in outside if a.status == 0),
        "server_errors_in_db_outage": sum(
            1 for a in answers if inside(a) and a.status >= 500
        ),
        "errors_sample": sorted(
            {
                f"{a.status} {a.method} {a.path} {a.error}"
                for a in outside
                if a.status in (0,) or a.status >= 500
            }
        )[:10],
    }
    r2 = report.get("R1_R2_R6", {})
    if r2.get("redis_down_at") and r2.get("redis_back_at"):
        during = [
            a
            for a in answers
            if a.method == "POST" and r2["redis_down_at"] <= a.at <= r2["redis_back_at"]
        ]
        summary["posts_during_redis_outage"] = len(during)
        summary["posts_during_redis_outage_statuses"] = dict(
            Counter(str(a.status) for a in during)
        )
    return summary


def acknowledged_missing(notes: list[str]) -> int:
    """Creates that answered 302 but whose follow-up is not in the database."""
    from customers.models import FollowUp

    if not notes:
        return 0
    found = set(FollowUp.objects.filter(note__in=notes).values_list("note", flat=True))
    return len(set(notes) - found)


# --- the verdict -------------------------------------------------------------------------------


def _check(name: str, value: Any, bound: str, ok: bool) -> dict[str, Any]:
    return {"name": name, "value": value, "bound": bound, "ok": bool(ok)}


def _common(report: dict[str, Any]) -> list[dict[str, Any]]:
    inv = report["invariants"]
    checks = [
        _check(
            "lost actions (due > lease+30 s ago, not done)",
            inv["lost_actions_all_kinds"],
            "0",
            inv["lost_actions_all_kinds"] == 0,
        ),
        _check(
            "unfinished actions (incl. not yet due)",
            inv["unfinished_actions_all_kinds"],
            "reported",
            True,
        ),
        _check(
            "duplicate notifications (per key)",
            inv["duplicate_notifications"],
            "0",
            inv["duplicate_notifications"] == 0,
        ),
        _check(
            "done reminders without notification",
            inv["missing_notifications"],
            "0",
            inv["missing_notifications"] == 0,
        ),
        _check(
            "notifications never e-mailed",
            inv["not_emailed"],
            "0",
            inv["not_emailed"] == 0,
        ),
        _check(
            "notified keys with no e-mail attempt",
            inv["missing_emails"],
            "0",
            inv["missing_emails"] == 0,
        ),
        _check(
            "torn lines in the e-mail attempt log",
            inv["torn_mail_log_lines"],
            "0",
            inv["torn_mail_log_lines"] == 0,
        ),
    ]
    for name, load in inv["followups_by_load"].items():
        checks.append(
            _check(
                f"[{name}] follow-ups without a reminder action",
                load["missing_actions"],
                "0",
                load["missing_actions"] == 0,
            )
        )
    slots = inv["slots"]
    if slots.get("checked"):
        checks.append(
            _check(
                "overbooked slots", slots["overbooked"], "0", slots["overbooked"] == 0
            )
        )
        checks.append(
            _check(
                "slots with booked_count != active appointments",
                slots["booked_count_not_active_count"],
                "0",
                slots["booked_count_not_active_count"] == 0,
            )
        )
    http = report["http"]
    checks.append(
        _check(
            "HTTP 5xx outside PostgreSQL outages",
            http["server_errors_outside_db_outage"],
            "0",
            http["server_errors_outside_db_outage"] == 0,
        )
    )
    return checks


def checks(report: dict[str, Any]) -> list[dict[str, Any]]:
    out = _common(report)
    inv = report["invariants"]
    loads = inv["followups_by_load"]
    if report["mode"] == "chaos":
        out += _c6_checks(report.get("C6"))
    r1 = report.get("R1_R2_R6") if report["mode"] == "chaos" else None
    if r1:
        kills = len(r1["kills"])
        out += [
            _check(
                "R1 follow-ups created",
                loads.get("R1", {}).get("followups"),
                f"{r1['followups']}",
                loads.get("R1", {}).get("followups") == r1["followups"],
            ),
            _check(
                "R1 worker kills (kill -9, main + pool)",
                kills,
                ">= 1 per 20 s",
                kills >= int(r1["window_s"] // 20),
            ),
            _check(
                "R1 max lateness (s)",
                loads.get("R1", {}).get("max_lateness_s"),
                f"<= {LATENESS_BOUND}",
                (loads.get("R1", {}).get("max_lateness_s") or 0) <= LATENESS_BOUND,
            ),
            _check(
                "R2 max lateness of HTTP creates (s)",
                loads.get("R2", {}).get("max_lateness_s"),
                f"<= {LATENESS_BOUND}",
                (loads.get("R2", {}).get("max_lateness_s") or 0) <= LATENESS_BOUND,
            ),
            _check(
                "R1 follow-ups created after their due time",
                loads.get("R1", {}).get("created_after_due"),
                "reported",
                True,
            ),
            _check(
                "duplicate e-mail attempts (at-least-once resends)",
                inv["duplicate_email_attempts"],
                f"<= {2 * (kills + r1['restarts'].get('worker', 0))} (2 x worker deaths)",
                inv["duplicate_email_attempts"]
                <= 2 * (kills + r1["restarts"].get("worker", 0)),
            ),
            _check(
                "supervisor restart, kill to respawn (s, max)",
                max(r1["restart_latencies_s"], default=None),
                f"<= {RESTART_BOUND}",
                max(r1["restart_latencies_s"], default=0) <= RESTART_BOUND,
            ),
            _check(
                "worker delivering again after a kill (s, max)",
                max(
                    (x for x in r1["delivering_again_after_kill_s"] if x is not None),
                    default=None,
                ),
                "reported",
                all(x is not None for x in r1["delivering_again_after_kill_s"]),
            ),
            _check(
                "R2 POSTs during the Redis outage",
                report["http"].get("posts_during_redis_outage_statuses"),
                "all 302",
                _all_302(report["http"]),
            ),
            _check(
                "R2/R6 worker and beat alive at the end",
                [r1["worker_alive_at_end"], r1["beat_alive_at_end"]],
                "both",
                r1["worker_alive_at_end"] and r1["beat_alive_at_end"],
            ),
            _check(
                "R6 sweeps resumed after beat kill (s)",
                r1["sweeps_resumed_after_beat_kill_s"],
                "reported",
                r1["sweeps_resumed_after_beat_kill_s"] is not None,
            ),
            _check(
                "R6 sweeps sent by the second beat",
                r1["sweeps_sent_by_second_beat"],
                "> 0 (double ticks happened)",
                r1["sweeps_sent_by_second_beat"] > 0,
            ),
            _check(
                "R2 HTTP creates answered 302 but missing",
                acknowledged_missing(r1["http_acknowledged"]),
                "0",
                acknowledged_missing(r1["http_acknowledged"]) == 0,
            ),
        ]
    # (C1 and R4 run with or without R1)
    c1 = report.get("C1")
    if c1:
        out += [
            _check(
                "C1 rounds with exactly 5 booked, 45 'full'",
                f"{c1['rounds_exactly_capacity']}/{c1['rounds']}",
                f"{c1['rounds']}/{c1['rounds']}",
                c1["rounds_exactly_capacity"] == c1["rounds"],
            ),
            _check(
                "C1 other outcomes (errors, deadlocks)",
                c1["other_outcomes"],
                "none",
                not c1["other_outcomes"],
            ),
        ]
    r4 = report.get("R4")
    if r4:
        bound = LATENESS_BOUND + r4_down(r4)
        out += [
            _check(
                "R4 app serves again after PostgreSQL start (s)",
                r4["served_again_after_s"],
                f"<= {SERVE_AGAIN_BOUND}",
                r4["served_again_after_s"] is not None
                and r4["served_again_after_s"] <= SERVE_AGAIN_BOUND,
            ),
            _check(
                "R4 slowest answer while PostgreSQL was down (s)",
                r4["slowest_answer_during_outage_s"],
                f"<= {FAIL_FAST_BOUND}",
                (r4["slowest_answer_during_outage_s"] or 0) <= FAIL_FAST_BOUND,
            ),
            _check(
                "R4 max lateness (s)",
                loads.get("R4", {}).get("max_lateness_s"),
                f"<= {bound:.0f} (outage + R1 bound)",
                (loads.get("R4", {}).get("max_lateness_s") or 0) <= bound,
            ),
            _check(
                "R4 creates answered 302 but missing",
                acknowledged_missing(r4["http_acknowledged"]),
                "0",
                acknowledged_missing(r4["http_acknowledged"]) == 0,
            ),
            _check(
                "R4 worker and beat alive at the end",
                [r4["worker_alive_at_end"], r4["beat_alive_at_end"]],
                "both",
                r4["worker_alive_at_end"] and r4["beat_alive_at_end"],
            ),
        ]
    poison = report.get("poison")
    if poison:
        out += _poison_checks(poison, loads)
    if report["mode"] == "soak":
        soak = report["soak"]
        growth = rss_growth(soak["samples"], soak.get("quiet_from", 0))
        max_conn = max((s["pg_connections"] for s in soak["samples"]), default=None)
        limit = report["facts"]["max_connections"] - 5
        http = report["http"]
        requests = max(http["requests"], 1)
        bound = LATENESS_BOUND + 15
        out += [
            _check(
                "soak max lateness (s)",
                loads.get("soak", {}).get("max_lateness_s"),
                f"<= {bound} (R1 bound + PostgreSQL outage)",
                (loads.get("soak", {}).get("max_lateness_s") or 0) <= bound,
            ),
            _check(
                "worker RSS growth after warm-up",
                growth.get("growth_pct"),
                "< 20 %",
                growth.get("growth_pct") is not None and growth["growth_pct"] < 20,
            ),
            _check(
                "PostgreSQL connections (max sampled)",
                max_conn,
                f"< {limit}",
                max_conn is not None and max_conn < limit,
            ),
            _check(
                "R5 requests with no answer (gunicorn worker kills)",
                f"{http['no_answer_outside_db_outage']} of {http['requests']}",
                "< 0.5 %",
                http["no_answer_outside_db_outage"] / requests < 0.005,
            ),
            _check(
                "R5 customers created over HTTP: acknowledged but missing; "
                "without their audit row",
                [
                    soak["customer_creates"]["acknowledged_missing"],
                    soak["customer_creates"]["without_audit_row"],
                ],
                f"[0, 0] ({soak['customer_creates']['acknowledged']} acknowledged)",
                soak["customer_creates"]["acknowledged_missing"] == 0
                and soak["customer_creates"]["without_audit_row"] == 0
                and soak["customer_creates"]["acknowledged"] > 0,
            ),
            _check(
                "HTTP creates answered 302 but missing",
                acknowledged_missing(soak["http_acknowledged"]),
                "0",
                acknowledged_missing(soak["http_acknowledged"]) == 0,
            ),
            _check(
                "worker, beat, gunicorn alive at the end",
                [
                    soak["worker_alive_at_end"],
                    soak["beat_alive_at_end"],
                    soak["web_alive_at_end"],
                ],
                "all",
                soak["worker_alive_at_end"]
                and soak["beat_alive_at_end"]
                and soak["web_alive_at_end"],
            ),
            _check(
                "supervisor restart, kill to respawn (s, max)",
                max(soak["restart_latencies_s"], default=None),
                f"<= {RESTART_BOUND}",
                max(soak["restart_latencies_s"], default=0) <= RESTART_BOUND,
            ),
        ]
        soak["rss"] = growth
    return out


def _poison_checks(
    poison: dict[str, Any], loads: dict[str, Any]
) -> list[dict[str, Any]]:
    """The poison scenario (docs/reliability.md, "A poison action"): 1 % of the
    reminders fail every time; the other 99 % go out as if nothing were wrong."""
    healthy = loads.get("P", {})
    bad = poison["poisoned"]
    expected_bad = poison["followups"] // poison["poison_every"]
    parked = bad["states"].get("needs_review", 0)
    attempts = poison["max_attempts_setting"]
    return [
        _check(
            "poison: healthy / poisoned follow-ups created",
            [healthy.get("followups"), bad["followups"]],
            f"[{poison['followups'] - expected_bad}, {expected_bad}]",
            healthy.get("followups") == poison["followups"] - expected_bad
            and bad["followups"] == expected_bad,
        ),
        _check(
            "poison: healthy reminders lost; not done",
            [healthy.get("lost"), healthy.get("followups", 0) - healthy.get("done", 0)],
            "[0, 0]",
            healthy.get("lost") == 0
            and healthy.get("done") == healthy.get("followups"),
        ),
        _check(
            "poison: healthy reminders' max lateness (s)",
            healthy.get("max_lateness_s"),
            f"<= {LATENESS_BOUND}",
            (healthy.get("max_lateness_s") or 0) <= LATENESS_BOUND,
        ),
        _check(
            "poison: healthy reminders' p50 / p99 lateness (s)",
            [healthy.get("p50_lateness_s"), healthy.get("p99_lateness_s")],
            "reported",
            True,
        ),
        _check(
            "poison: poisoned reminders parked as needs_review",
            f"{parked} of {bad['followups']}",
            f"{bad['followups']} of {bad['followups']}",
            parked == bad["followups"] and poison["all_poisoned_parked"],
        ),
        _check(
            "poison: attempts of each poisoned reminder (min, max)",
            [bad["min_attempts"], bad["max_attempts"]],
            f"[{attempts}, {attempts}]",
            bad["min_attempts"] == bad["max_attempts"] == attempts,
        ),
        _check(
            "poison: all parked, s after the window",
            poison["parked_s_after_window"],
            f"<= {poison['parked_bound_s'] + 120:.0f}",
            poison["all_poisoned_parked"],
        ),
        _check(
            "poison: worker alive, restarts",
            [poison["worker_alive_at_end"], poison["worker_restarts"]],
            "[True, 0]",
            poison["worker_alive_at_end"] and poison["worker_restarts"] == 0,
        ),
    ]


def _c6_checks(c6: dict[str, Any] | None) -> list[dict[str, Any]]:
    """C6 (reliability §3.2): mixed C1 + C3 + C5 load."""
    if not c6:
        return []
    surfaced = {**c6["booking_surfaced"], **c6["ticket_surfaced"]}
    return [
        _check(
            "C6 'deadlock detected' in the PostgreSQL log",
            c6["pg_deadlocks"] if c6["pg_log_checked"] else "not checked",
            "0",
            c6["pg_log_checked"] and c6["pg_deadlocks"] == 0,
        ),
        _check(
            "C6 lock waits > 200 ms; serialization failures (PostgreSQL log)",
            [c6["pg_lock_waits"], c6["pg_serialization_failures"]],
            "reported",
            True,
        ),
        _check(
            "C6 transactions retried (driver; worker and gunicorn logs)",
            [c6["retries_in_driver"], c6["retries_in_app_logs"]],
            "reported (each at most 3 times)",
            True,
        ),
        _check(
            "C6 retries given up (surfaced to a user)",
            c6["gave_up"],
            "0",
            c6["gave_up"] == 0,
        ),
        _check(
            "C6 HTTP 5xx; no answer",
            [c6["http_5xx"], c6["http_unanswered"]],
            f"[0, 0] of {c6['http_requests']}",
            c6["http_5xx"] == 0 and c6["http_unanswered"] == 0,
        ),
        _check(
            "C6 errors other than full/conflict answers (threads)",
            surfaced,
            "none",
            not surfaced,
        ),
        _check(
            "C6 seats booked = books - cancels = active appointments",
            [
                c6["seats_booked"],
                c6["books_minus_cancels"],
                c6["active_appointments"],
            ],
            "all equal",
            c6["seats_booked"]
            == c6["books_minus_cancels"]
            == c6["active_appointments"],
        ),
        _check(
            "C6 ticket versions = successful saves (lost updates)",
            c6["ticket_version_mismatches"] or 0,
            "0",
            not c6["ticket_version_mismatches"],
        ),
    ]


def r4_down(r4: dict[str, Any]) -> float:
    return max(0.0, r4["back_at"] - r4["crash_at"])


def _all_302(http: dict[str, Any]) -> bool:
    statuses = http.get("posts_during_redis_outage_statuses") or {}
    return bool(statuses) and set(statuses) == {"302"}


def rss_growth(samples: list[dict[str, Any]], quiet_from: float) -> dict[str, Any]:
    """RSS of the longest-lived worker incarnation: after warm-up vs. at its end.

    Only samples after the last disruption that touches the worker (R1, R2, R4) count,
    and warm-up is their first minute (a third when shorter): recovering from a
    backlog fills caches once, which is not a leak. Each end is the median of three
    samples, so one busy moment does not decide.
    """
    lives: dict[int, list[dict[str, Any]]] = {}
    for sample in samples:
        if sample["worker_rss_kb"] and sample["at"] >= quiet_from:
            lives.setdefault(sample["worker_start"], []).append(sample)
    if not lives:
        return {}
    life = max(lives.values(), key=lambda s: s[-1]["at"] - s[0]["at"])
    span = life[-1]["at"] - life[0]["at"]
    warm = life[0]["at"] + min(60.0, span / 3)
    after = [s["worker_rss_kb"] for s in life if s["at"] >= warm]
    if len(after) < 6:
        return {"samples": len(after), "growth_pct": None}
    start = sorted(after[:3])[1]
    end = sorted(after[-3:])[1]
    return {
        "measured_from": life[0]["at"],
        "incarnation": life[0]["worker_start"],
        "span_s": round(span),
        "rss_after_warmup_kb": start,
        "rss_at_end_kb": end,
        "growth_pct": round(100 * (end - start) / start, 1),
    }


def table(checks_: list[dict[str, Any]]) -> str:
    width = max(len(c["name"]) for c in checks_)
    lines = [f"{'check'.ljust(width)}  {'value':>24}  {'bound':<34} ok"]
    for c in checks_:
        value = str(c["value"])
        lines.append(
            f"{c['name'].ljust(width)}  {value:>24}  {c['bound']:<34} "
            + ("PASS" if c["ok"] else "FAIL")
        )
    failed = sum(1 for c in checks_ if not c["ok"])
    lines.append(f"{len(checks_) - failed} passed, {failed} failed")
    return "\n".join(lines)
