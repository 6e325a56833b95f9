"""R7, the configuration guard: the settings that at-least-once delivery rests on, read
where the running system reads them (docs/reliability.md; shared/domain/reliability.md
R7, D4).

test_pipeline.py's test_r7 checks the Celery flags the worker gets; this file adds what
lies around them: every task's runtime bound against the broker's visibility timeout, the
Redis eviction policy, and the processes `make run` starts. The "no countdown/eta over
300 s in code" half of R7 is the semgrep rule kehu-no-broker-delay (`make audit`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import redis
from django.conf import settings

from crm.celery import app

REPO_DIR = Path(__file__).resolve().parents[2]
# D4: nothing waits in the broker longer than this (semgrep: kehu-no-broker-delay).
MAX_COUNTDOWN = 300
OUR_APPS = ("crm.", "customers.", "service.", "culture.")

# Tasks that may run longer than the visibility timeout allows, because a second copy
# delivered while the first still runs does no harm: each holds a lease in the database
# (or is an idempotent sweep) and a redelivered copy backs off or finds nothing to do.
# A new task goes here only with that property, and a time limit otherwise.
LEASE_GUARDED = {
    "customers.tasks.customers_daily_task": "idempotent sweeps (pool return, dormant)",
    "customers.tasks.import_job_validate_task": "ImportJob.lease_until; JobBusy retry",
    "customers.tasks.import_job_execute_task": "ImportJob.lease_until; JobBusy retry",
    "customers.tasks.export_request_produce_task": "claims the request FOR UPDATE SKIP "
    "LOCKED and marks it with its file name first",
    # Short by construction: a sweep claims at most a batch, a delivery one action;
    # both run under the action's lease (KEHU_ACTION_LEASE_SECONDS).
    "crm.scheduler.tasks.actions_sweep_task": "claims rows under a lease, SKIP LOCKED",
    "crm.scheduler.tasks.action_deliver_task": "the action's lease and state machine",
    "crm.scheduler.tasks.action_deliver_many_task": "each action's lease and state "
    "machine; a chunk is at most DELIVERY_CHUNK actions",
}


def our_tasks() -> dict[str, object]:
    app.loader.import_default_modules()
    return {
        name: task
        for name, task in app.tasks.items()
        if name.startswith(OUR_APPS) and not name.startswith("celery.")
    }


def test_every_task_acknowledges_late_and_is_redelivered_when_its_worker_dies():
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_eta_task_limit and conf.worker_eta_task_limit > 0
    tasks = our_tasks()
    assert "crm.scheduler.tasks.action_deliver_task" in tasks, sorted(tasks)
    late = {name for name, task in tasks.items() if not task.acks_late}
    assert not late, f"tasks acknowledged before they run: {sorted(late)}"


def test_the_visibility_timeout_covers_the_longest_wait_and_run_twice():
    """A task not acknowledged within visibility_timeout is handed to another worker
    while the first may still run it: the timeout must cover twice the longest countdown
    plus runtime, and a task without a runtime bound must be safe to run twice."""
    conf = app.conf
    visibility = conf.broker_transport_options["visibility_timeout"]
    bounds = {}
    unbounded = []
    for name, task in our_tasks().items():
        limit = task.time_limit or conf.task_time_limit
        if limit:
            bounds[name] = limit
        elif name not in LEASE_GUARDED:
            unbounded.append(name)
    assert not unbounded, (
        f"tasks with neither a time limit nor a database lease: {unbounded}; give them "
        "time_limit= or add them to LEASE_GUARDED with the reason"
    )
    # The scheduler's own bound: a delivery abandoned after its lease is re-dispatched.
    longest = max([*bounds.values(), settings.KEHU_ACTION_LEASE_SECONDS])
    assert visibility >= 2 * (MAX_COUNTDOWN + longest), (visibility, bounds)


def test_the_broker_never_evicts_keys():
    """A Redis that evicts under memory pressure silently drops queued tasks. The test
    Redis (the embedded one of `make test`, or CI's system Redis started with the same
    flag) must say noeviction; deployments must configure it (docs/reliability.md)."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        policy = client.config_get("maxmemory-policy")["maxmemory-policy"]
    finally:
        client.close()
    assert policy == "noeviction"


def test_the_embedded_redis_is_started_with_noeviction():
    source = (REPO_DIR / "crm" / "embedded.py").read_text()
    assert '"--maxmemory-policy",\n                "noeviction",' in source
    ci = (REPO_DIR / ".ci" / "run").read_text()
    assert "--maxmemory-policy noeviction" in ci


def _children_of_make_run() -> list[list[str]]:
    """The argv literals of the Child(...) processes cmd_run starts (crm/launcher.py)."""
    tree = ast.parse((REPO_DIR / "crm" / "launcher.py").read_text())
    cmd_run = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == "cmd_run"
    )
    children = []
    for node in ast.walk(cmd_run):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "Child"
            and len(node.args) >= 2
        ):
            words = [
                n.value
                for n in ast.walk(node.args[1])
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
            ]
            children.append([node.args[0].value, *words])
    return children


def test_make_run_starts_exactly_one_beat():
    children = _children_of_make_run()
    names = [child[0] for child in children]
    assert {"web", "worker", "beat"} <= set(names), children
    beats = [child for child in children if "beat" in child[1:]]
    assert len(beats) == 1, children
    # A worker with an embedded beat (-B) would be a second one.
    for child in children:
        assert "-B" not in child and "--beat" not in child, child


def test_the_worker_of_make_run_consumes_every_queue_tasks_are_routed_to():
    worker = next(child for child in _children_of_make_run() if child[0] == "worker")
    queues = set(worker[worker.index("-Q") + 1].split(","))
    routed = {route["queue"] for route in app.conf.task_routes.values()}
    assert routed | {"celery"} <= queues, (queues, routed)
    assert set(settings.CELERY_WORKER_QUEUES.split(",")) == queues


@pytest.mark.parametrize("entry", sorted(settings.CELERY_BEAT_SCHEDULE))
def test_every_periodic_task_exists_and_expires_before_it_piles_up(entry):
    schedule = settings.CELERY_BEAT_SCHEDULE[entry]
    assert schedule["task"] in our_tasks(), schedule
    seconds = getattr(schedule["schedule"], "total_seconds", lambda: None)()
    if isinstance(schedule["schedule"], int | float):
        seconds = schedule["schedule"]
    if seconds is not None and seconds < 3600:
        # A frequent tick that waited longer than its interval is dropped: the next one
        # comes (the backlog would otherwise grow while workers are down).
        assert schedule.get("options", {}).get("expires"), schedule
