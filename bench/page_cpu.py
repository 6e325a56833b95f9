"""CPU time per request of the bench's page scenarios, in process, on any database.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/kehu_prof \\
    DJANGO_SETTINGS_MODULE=crm.settings.bench python -m bench.page_cpu [-n 30]
        [--only customers.list,service.ticket] [--profile customers.list]

Requests the pages of `bench.scenarios` through Django's test client as the demo users
(`sales1` for customer pages, `service1` for service pages, as `seed_demo` makes them)
and reports `time.process_time()` per request: the CPU the Django process spends on a
page (middleware, views, ORM, template rendering, the database driver), not the time
it waited for PostgreSQL or for a CPU shared with other processes. It is the figure to
compare before and after a change to Python or template code on a busy machine; the
wall-clock figures of `make bench` stay the ones the goals are judged by.

The service ticket page needs a ticket assigned to `service1` with many messages (the
bench's has 200): `--ticket REFERENCE` names it, otherwise the open ticket of
`service1` with the most messages is used.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable


def _paths(name: str, fx: object, ticket: str) -> list[str]:
    from bench import scenarios

    if name == "service.ticket":
        return [f"/service/t/{ticket}/"]
    scenario = next(s for s in scenarios.SCENARIOS if s.name == name)
    return list(scenario.requests(fx))


PAGES = {
    "customers.list": "sales",
    "customers.search_name": "sales",
    "customers.search_pinyin": "sales",
    "customers.search_phone": "sales",
    "customers.detail": "sales",
    "service.queue": "service",
    "service.ticket": "service",
}
LOGINS = {"sales": "sales1", "service": "service1"}


def _busiest_ticket() -> str:
    from django.db.models import Count

    from service.models import Ticket

    ticket = (
        Ticket.objects.filter(assignee__username=LOGINS["service"])
        .exclude(status__in=["resolved", "closed"])
        .annotate(n=Count("messages"))
        .order_by("-n")
        .first()
    )
    return ticket.reference


def measure(
    get: Callable[[str], object], paths: list[str], n: int
) -> tuple[list[float], int]:
    for path in paths[:3]:  # warm-up: template cache, translations, connection
        get(path)
    times = []
    size = 0
    for i in range(n):
        path = paths[i % len(paths)]
        start = time.process_time()
        response = get(path)
        times.append((time.process_time() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code}")
        size = len(response.content)
    return times, size


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.page_cpu")
    parser.add_argument("-n", type=int, default=30, help="requests per page")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--ticket", default="", help="reference of the ticket page")
    parser.add_argument("--profile", default="", help="cProfile this scenario")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.bench")

    import django

    django.setup()
    from django.test import Client

    from bench.scenarios import Fixtures
    from crm.accounts.models import User

    names = [n for n in args.only.split(",") if n] or list(PAGES)
    if args.profile:
        names = [args.profile]
    fx = Fixtures(LOGINS)
    ticket = args.ticket or _busiest_ticket()
    clients = {}
    for role, username in LOGINS.items():
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(User.objects.get(username=username))
        clients[role] = client
    out = sys.stdout.write
    out(f"{'scenario':<26}{'median':>8}{'p90':>8}{'min':>8}  ms CPU, n={args.n}\n")
    for name in names:
        client = clients[PAGES[name]]
        paths = _paths(name, fx, ticket)
        if args.profile:
            measure(client.get, paths, 3)  # warm-up outside the profile
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            measure(client.get, paths, args.n)
            profiler.disable()
            stats = pstats.Stats(profiler, stream=sys.stdout)
            stats.sort_stats("cumulative").print_stats(60)
            stats.sort_stats("tottime").print_stats(40)
            continue
        times, size = measure(client.get, paths, args.n)
        times.sort()
        out(
            f"{name:<26}{statistics.median(times):8.1f}"
            f"{times[int(len(times) * 0.9)]:8.1f}{times[0]:8.1f}  {size:,} bytes\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
