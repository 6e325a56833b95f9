"""The named scenarios of `make bench`: one row each in SCENARIOS.

A scenario either requests real pages over HTTP as a logged-in user of its role
(`requests`: a function from the bench fixtures to the list of paths it cycles through),
or performs a real action in the runner process (`action`, timed; `setup` and `teardown`
around each repetition are not; the action may return extra figures). A scenario whose
feature is not built yet has neither, and its `missing` says why; it is reported as
missing, never measured against something else. `needs` checks run first, so a
scenario whose feature half-exists (a model field the generator does not fill, say) is
also reported missing.

Adding a scenario is one Scenario(...) row; its name is the key figures are compared by
over time, so never rename one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from bench import handover_board, handover_burst, handover_onsite, sweep

Check = Callable[[], str | None]  # None when satisfied, else why not


@dataclass(frozen=True)
class Goal:
    text: str
    metric: str = "p95_ms"  # a key of the scenario's result
    limit: float | None = None
    higher_is_better: bool = False
    # (figure, least): judged only when the result's figure reaches `least`, e.g. a
    # sweep over fewer items than the goal names (at small size) is not judged.
    judged_from: tuple[str, float] | None = None
    # Figures of the result that must also be 0 (e.g. errors, overbooked seats).
    zero: tuple[str, ...] = ()

    def met(self, result: dict[str, Any]) -> bool | None:
        value = result.get(self.metric)
        if self.limit is None or value is None:
            return None
        if self.judged_from:
            figure, least = self.judged_from
            if result.get(figure, 0) < least:
                return None
        if any(result.get(figure, 1) != 0 for figure in self.zero):
            return False
        return value >= self.limit if self.higher_is_better else value < self.limit


PAGE = Goal("p95 < 100 ms", "p95_ms", 100)


@dataclass(frozen=True)
class Scenario:
    name: str
    goal: Goal
    role: str = "sales"
    requests: Callable[[Fixtures], Sequence[str]] | None = None
    action: Callable[[Fixtures], dict[str, Any] | None] | None = None
    setup: Callable[[Fixtures], None] | None = None
    teardown: Callable[[Fixtures], None] | None = None
    repeat: int = 0  # actions: repetitions (0: the runner's default)
    needs: tuple[Check, ...] = ()
    concurrency: int = 1  # > 1: that many clients at once; rps and errors recorded
    missing: str = ""

    def why_missing(self) -> str | None:
        if self.requests is None and self.action is None:
            return self.missing or "feature not built yet"
        for check in self.needs:
            reason = check()
            if reason:
                return reason
        return None


# --- checks ---------------------------------------------------------------------------


def has_fields(label: str, *names: str) -> Check:
    def check() -> str | None:
        from django.apps import apps

        try:
            model = apps.get_model(label)
        except LookupError:
            return f"model {label} does not exist yet"
        columns = {f.name for f in model._meta.get_fields()}
        absent = [n for n in names if n not in columns]
        return f"{label} has no {', '.join(absent)} yet" if absent else None

    return check


def generated(dataset: str, *columns: str) -> Check:
    """The seed_scale dataset fills these columns (else the figures would be of blanks)."""

    def check() -> str | None:
        from crm.core import seeding

        spec = next(d for d in seeding.datasets() if d.name == dataset)
        absent = [c for c in columns if c not in spec.columns]
        if absent:
            return f"seed_scale does not generate {dataset}.{', '.join(absent)}"
        return None

    return check


def built(dataset: str) -> Check:
    """seed_scale built this dataset (a page over an empty table proves nothing)."""

    def check() -> str | None:
        from crm.core import scale

        state = scale.read_state().get(dataset)
        if not state or state["missing"] or not state["rows"]:
            return f"bench dataset {dataset} not built"
        return None

    return check


def rollups_built() -> str | None:
    """The dashboard's rollups exist (culture.rollup_rebuild runs before it)."""
    from culture.dashboards.models import RollupState

    if not RollupState.objects.filter(
        name="daily_activity", last_updated_at__isnull=False
    ).exists():
        return "dashboard rollups not built (run culture.rollup_rebuild first)"
    return None


# --- fixtures: real rows of the bench data that a scenario's requests point at ---------


class Fixtures:
    """Values drawn from the bench database, per role, computed once when first used."""

    SAMPLE = 200

    def __init__(self, logins: dict[str, str], size: str = "full") -> None:
        self.logins = logins
        self.size = size

    def user(self, role: str) -> Any:
        from crm.accounts.models import User

        return User.objects.get(username=self.logins[role])

    def visible_customers(self, role: str) -> Any:
        from customers.models import Customer

        return Customer.objects.visible_to(self.user(role))

    def _sample(self, role: str, *fields: str, **filters: Any) -> list[tuple]:
        """About SAMPLE rows spread evenly over the role's visible customers."""
        rows = list(
            self.visible_customers(role)
            .filter(**filters)
            .order_by("pk")
            .values_list("pk", *fields)
        )
        step = max(1, len(rows) // self.SAMPLE)
        return rows[::step][: self.SAMPLE]

    @cached_property
    def sales_customer_ids(self) -> list[int]:
        return [row[0] for row in self._sample("sales")]

    @cached_property
    def sales_person_names(self) -> list[str]:
        from customers.models import Customer

        return [
            row[1] for row in self._sample("sales", "name", kind=Customer.Kind.OWNER)
        ]

    @cached_property
    def sales_phones(self) -> list[str]:
        return [row[1] for row in self._sample("sales", "phone", phone__gt="")]

    @cached_property
    def sales_pinyin(self) -> list[tuple[str, str]]:
        from customers.models import Customer

        rows = self._sample(
            "sales", "name_pinyin", "name_initials", kind=Customer.Kind.OWNER
        )
        return [(row[1], row[2]) for row in rows]

    @cached_property
    def pool_customer_ids(self) -> list[int]:
        """About SAMPLE customers of the public pool (公海), spread over it."""
        from customers.models import Customer

        ids = list(
            Customer.objects.in_pool()
            .order_by("pk")
            .values_list("pk", flat=True)[: self.SAMPLE * 20]
        )
        return ids[:: max(1, len(ids) // self.SAMPLE)][: self.SAMPLE]

    @cached_property
    def big_ticket_reference(self) -> str:
        """The ticket with BIG_TICKET_MESSAGES messages (seed_scale makes it)."""
        from service import demo
        from service.models import Ticket

        return Ticket.objects.get(pk=demo.BIG_TICKET).reference


def search(query: str) -> str:
    return "/customers/?" + urlencode({"q": query})


def name_searches(fx: Fixtures) -> list[str]:
    """One, two and three characters of real names, as people type them (王, 王芳, 王芳华)."""
    paths = []
    for n, name in enumerate(fx.sales_person_names):
        paths.append(search(name[: 1 + n % 3]))
    return paths


# Two characters that many customers' names hold: the legal form and trade of most
# organisations, two big cities, the commonest full names. Each is requested as often
# as the others, so each has its own percentiles (issue 18: a slow term must not hide).
BROAD_TERMS = ("有限", "公司", "科技", "上海", "北京", "王伟", "张伟")


def broad_searches(fx: Fixtures) -> list[str]:
    return [search(term) for term in BROAD_TERMS]


def list_filters(fx: Fixtures) -> list[str]:
    """The list as sales narrow it: by each kind (the organisations' list), by owner
    (the login and a teammate), team, stage, tier, province, key accounts and the pool,
    and in each of its orders, alone and within the organisations of one kind."""
    from customers.models import Customer

    sales = fx.user("sales")
    teammate = (
        type(sales)
        .objects.filter(team=sales.team_id, groups__name="sales")
        .exclude(pk=sales.pk)
        .order_by("username")
        .first()
    )
    filters: list[dict[str, Any]] = [{"kind": kind} for kind in Customer.Kind.values]
    filters += [{"owner": sales.pk}, {"team": sales.team_id}]
    if teammate:
        filters.append({"owner": teammate.pk})
    filters += [
        {"stage": Customer.Stage.CUSTOMER},
        {"tier": "A"},
        {"province": "广东省"},
        {"is_key_account": "on"},
        {"pool": "on"},
    ]
    for sort in ("name", "created", "last_contact"):
        filters += [{"sort": sort}, {"kind": Customer.Kind.ENTERPRISE, "sort": sort}]
    return ["/customers/?" + urlencode(f) for f in filters]


def phone_searches(fx: Fixtures) -> list[str]:
    return [search(phone[-4:]) for phone in fx.sales_phones]


def pool_filters(fx: Fixtures) -> list[str]:
    """The pool unfiltered and by each of its filters (kind, source, region), alone and
    combined, as a salesperson narrows it down before claiming."""
    from customers.models import Customer

    filters = [
        {},
        {"kind": Customer.Kind.OWNER},
        {"source": Customer.Source.REFERRAL},
        {"province": "广东省"},
        {"province": "广东省", "city": "深圳市"},
        {"province": "浙江省", "kind": Customer.Kind.OWNER},
        {"city": "上海市", "source": Customer.Source.REFERRAL},
    ]
    return ["/customers/pool/" + (f"?{urlencode(f)}" if f else "") for f in filters]


def pinyin_searches(fx: Fixtures) -> list[str]:
    """Initials (zs) and full pinyin (zhangsan), alternately."""
    return [
        search(initials if n % 2 else full)
        for n, (full, initials) in enumerate(fx.sales_pinyin)
    ]


# The builder's example (issue 14): what the count endpoint validates and counts on
# every keystroke, minus the few hundred bytes of HTML around the number.
SEGMENT_RULES = {
    "op": "and",
    "rules": [
        {"field": "tier", "operator": "in", "value": ["A"]},
        {"field": "kind", "operator": "in", "value": ["dealer"]},
        {"field": "macro_region", "operator": "in", "value": ["华东"]},
        {
            "field": "complaints",
            "operator": "count_gte",
            "value": {"days": 90, "count": 1},
        },
    ],
}


def segment_count(fx: Fixtures) -> dict[str, Any]:
    from culture.segments import rules, selectors

    tree = rules.validate(SEGMENT_RULES)
    return {"members": selectors.live_count(user=fx.user("manager"), tree=tree)}


def _value_rollups_built() -> None:
    """The value rollups over the bench data (not timed): the monthly revenue rollup
    and the RFM scores, built once by the same code as `value_rebuild`."""
    from culture.value import rollups, services
    from culture.value.models import CustomerValue, RollupState

    state = RollupState.objects.filter(name=rollups.REVENUE).first()
    if state is None or state.rebuilt_at is None:
        rollups.revenue_rebuild()
    if not CustomerValue.objects.exists():
        services.rfm_compute()


def pareto_pages(fx: Fixtures) -> list[str]:
    """A manager's value page for the year, a quarter and a month, both views, and
    the 80 % list; the rollups are built first (docs/value.md)."""
    _value_rollups_built()
    return [
        "/value/?kind=year",
        "/value/?kind=year&view=channel",
        "/value/?kind=quarter",
        "/value/",
        "/value/core/?kind=year",
    ]


def segment_dashboard_pages(fx: Fixtures) -> list[str]:
    """The dashboard of the bench's 4-rule segment (SEGMENT_RULES), refreshed and
    its 180 days computed first (not timed)."""
    from culture.segments import services as segment_services
    from culture.segments.models import Segment
    from culture.value import segment_dashboard

    manager = fx.user("manager")
    segment = Segment.objects.filter(
        owner=manager, name="bench 华东 A 级经销商"
    ).first()
    if segment is None:
        segment = segment_services.segment_create(
            by=manager,
            data={
                "name": "bench 华东 A 级经销商",
                "kind": "dynamic",
                "rules": SEGMENT_RULES,
                "visibility": "department",
            },
        )
        segment_services.segment_refresh(segment_id=segment.pk)
        segment_dashboard.snapshot_compute(
            segment_id=segment.pk, days=segment_dashboard.HORIZON
        )
    base = f"/segments/{segment.pk}/dashboard/"
    return [base, f"{base}?days=30", f"{base}?days=180", f"{base}members/"]


def scorecard_rebuild(fx: Fixtures) -> dict[str, Any]:
    """`manage.py scorecard_rebuild`'s work, timed in the runner."""
    from culture.scorecard import rollups

    return {"days": rollups.rebuild()["days"]}


def scorecard_pages(fx: Fixtures) -> list[str]:
    """The scorecard under each period, a team, a region, a custom three-year range
    and the unhappy answers behind the satisfaction figure; the rollups are built first
    if `culture.scorecard_rebuild` did not run (not timed). The Pareto share reads
    culture/value's precomputed ranking as it is (built by culture.pareto, which runs
    later; three indexed reads either way)."""
    from crm.accounts.models import Team
    from culture.scorecard import rollups
    from culture.scorecard.models import ScorecardState

    if not ScorecardState.objects.filter(
        name=rollups.DAILY, last_rebuilt_at__isnull=False
    ).exists():
        rollups.rebuild()
    team = Team.objects.filter(name__startswith="客服").order_by("pk").first()
    paths = ["/scorecard/"]
    paths += [f"/scorecard/?period={p}" for p in ("week", "month", "year")]
    if team:
        paths.append(f"/scorecard/?period=year&team={team.pk}")
    paths.append("/scorecard/?period=year&" + urlencode({"region": "华东"}))
    paths.append("/scorecard/?period=custom&start=2024-01-01&end=2026-12-31")
    paths.append("/scorecard/cases/?period=year&figure=unsatisfied")
    return paths


# --- the table ------------------------------------------------------------------------


def deal_list_filters(fx: Fixtures) -> list[str]:
    """The deal list as sales use it: recent, open, by stage, by amount, sorted by
    amount, by expected date range and title and name searches of four and of two
    characters (bounded pages, indexed)."""
    from culture.deals.models import Deal, DealStage

    stages = list(DealStage.objects.filter(is_active=True).values_list("pk", flat=True))
    user = fx.user("sales")
    titles = list(
        Deal.objects.visible_to(user)
        .order_by("-id")
        .values_list("title", flat=True)[:5]
    )
    paths = ["/deals/", "/deals/?status=open", "/deals/?sort=amount"]
    paths += [f"/deals/?stage={pk}&status=open" for pk in stages]
    paths += [
        "/deals/?" + urlencode({"amount_min": 1_000_000, "amount_max": 5_000_000}),
        "/deals/?"
        + urlencode({"expected_from": "2026-01-01", "expected_to": "2026-12-31"}),
    ]
    paths += ["/deals/?" + urlencode({"q": t[:4]}) for t in titles if len(t) >= 3]
    # Two characters, as Chinese names and project names are searched: a customer's
    # name (rare among the deals) and a title's first two (dense).
    terms = ["王伟", "张伟"] + sorted({t[:2] for t in titles if len(t) >= 2})[:2]
    paths += ["/deals/?" + urlencode({"q": term}) for term in terms]
    return paths


def manager_dashboards(fx: Fixtures) -> list[str]:
    """The manager's home (the dashboard) and the dashboard under each period, a team
    and a custom year: every figure from the rollups."""
    from crm.accounts.models import Team

    manager = fx.user("manager")
    teams = list(
        Team.objects.filter(department__teams=manager.team_id)
        .order_by("pk")
        .values_list("pk", flat=True)[:3]
    )
    paths = ["/", "/dashboards/"]
    paths += [f"/dashboards/?period={p}" for p in ("week", "month", "quarter", "year")]
    paths += [f"/dashboards/?period=year&team={pk}&days=90" for pk in teams]
    paths.append("/dashboards/?period=custom&start=2024-01-01&end=2026-12-31")
    return paths


def rollups_rebuild(fx: Fixtures) -> dict[str, Any]:
    """`manage.py rollups_rebuild`'s work, timed in the runner: the daily table from all
    history and today's snapshots."""
    from culture.dashboards import rollups

    result = rollups.rebuild()
    return {"days": result["days"]}


SCENARIOS: list[Scenario] = [
    Scenario(
        "customers.list",
        PAGE,
        requests=lambda fx: ["/customers/"],
    ),
    Scenario(
        "customers.list_filters",
        Goal(
            "p95 < 100 ms (the list by kind, owner, team, stage, tier, province, key "
            "accounts, pool, and in each order)",
            "p95_ms",
            100,
        ),
        requests=list_filters,
        needs=(built("customers"),),
    ),
    Scenario("customers.search_name", PAGE, requests=name_searches),
    Scenario(
        "customers.search_broad",
        Goal(
            "p95 < 100 ms, and per term (two characters many names hold: "
            + "、".join(BROAD_TERMS)
            + ")",
            "p95_ms",
            100,
        ),
        requests=broad_searches,
        needs=(built("customers"),),
    ),
    Scenario(
        "customers.search_pinyin",
        PAGE,
        requests=pinyin_searches,
        needs=(
            has_fields("customers.Customer", "name_pinyin", "name_initials"),
            generated("customers", "name_pinyin", "name_initials"),
        ),
    ),
    Scenario(
        "customers.search_phone",
        PAGE,
        requests=phone_searches,
        needs=(built("customer_phones"),),
    ),
    Scenario(
        "customers.detail",
        PAGE,
        requests=lambda fx: [f"/customers/{pk}/" for pk in fx.sales_customer_ids],
        needs=(built("contact_logs"),),
    ),
    Scenario(
        "customers.pool",
        Goal("p95 < 100 ms (公海 by kind, source and region)", "p95_ms", 100),
        requests=pool_filters,
        needs=(built("customers"),),
    ),
    Scenario(
        "customers.pool_preview",
        PAGE,
        requests=lambda fx: [f"/customers/pool/{pk}/" for pk in fx.pool_customer_ids],
        needs=(built("customers"),),
    ),
    Scenario(
        "deals.board",
        Goal("p95 < 100 ms (pipeline board, 3,000,000 deals)", "p95_ms", 100),
        role="manager",
        # The department's board, then one salesperson's (the owner filter).
        requests=lambda fx: [
            "/deals/board/",
            f"/deals/board/?owner={fx.user('sales').pk}",
        ],
        needs=(built("deals"),),
    ),
    Scenario(
        "deals.list",
        Goal(
            "p95 < 100 ms (deal list and its filters, 3,000,000 deals)", "p95_ms", 100
        ),
        requests=deal_list_filters,
        needs=(built("deals"),),
    ),
    Scenario(
        "notifications.list",
        PAGE,
        role="service",
        requests=lambda fx: ["/notifications/"],
        needs=(built("tickets"),),
    ),
    Scenario(
        "service.queue",
        Goal("p95 < 100 ms (team queue by SLA due, 1,000,000 tickets)", "p95_ms", 100),
        role="service",
        # The team tab: 客服一组's open tickets, whatever breaches first on top.
        requests=lambda fx: ["/service/?queue=team"],
        needs=(built("tickets"),),
    ),
    Scenario(
        "service.ticket",
        Goal("p95 < 100 ms (ticket with 200 messages)", "p95_ms", 100),
        role="service",
        requests=lambda fx: [f"/service/t/{fx.big_ticket_reference}/"],
        needs=(built("tickets"), built("ticket_messages")),
    ),
    Scenario(
        "service.escalation_sweep",
        Goal(
            "< 5 s over 10,000 due tickets (claim, then deliver on the worker's "
            "2 processes)",
            "p50_ms",
            5_000,
            judged_from=("actions", 10_000),
        ),
        role="worker",
        setup=sweep.setup,
        action=sweep.run,
        teardown=sweep.teardown,
        repeat=3,
        needs=(built("tickets"),),
    ),
    # The day's writes (bench/handover_onsite.py): 50 staff posting at once, the
    # server time of each POST judged; check-ins first (the station scenario starts
    # the owners the generator left waiting, the defects go on cases in progress).
    Scenario(
        "handover.checkin",
        Goal(
            "p95 < 150 ms (server time of a desk check-in: 750 booked owners of a "
            "5,000-unit event, 50 desks at once)",
            "server_p95_ms",
            150,
        ),
        role="manager",
        setup=handover_onsite.checkin_setup,
        action=handover_onsite.checkin_run,
        repeat=1,
        concurrency=handover_onsite.CLIENTS,
        needs=(built("handover_live_cases"), handover_onsite.missing),
    ),
    Scenario(
        "handover.station",
        Goal(
            "p95 < 150 ms (server time of a station transition: 600 waiting owners "
            "started at the first station, 50 counters at once)",
            "server_p95_ms",
            150,
        ),
        role="manager",
        setup=handover_onsite.station_setup,
        action=handover_onsite.station_run,
        repeat=1,
        concurrency=handover_onsite.CLIENTS,
        needs=(built("handover_live_cases"), handover_onsite.missing),
    ),
    Scenario(
        "handover.defect",
        Goal(
            "p95 < 150 ms (server time of recording a defect, photo upload excluded: "
            "one on each case in progress, 50 inspectors at once)",
            "server_p95_ms",
            150,
        ),
        role="manager",
        setup=handover_onsite.defect_setup,
        action=handover_onsite.defect_run,
        repeat=1,
        concurrency=handover_onsite.CLIENTS,
        needs=(built("handover_live_cases"), handover_onsite.missing),
    ),
    Scenario(
        "handover.board",
        Goal(
            "p95 < 100 ms (the 交付大屏 of a 5,000-unit event on the day: page, "
            "figures and unit grid as screens poll them, 50 concurrent managers)",
            "p95_ms",
            100,
        ),
        role="manager",
        requests=handover_board.board_pages,
        concurrency=handover_board.CLIENTS,
        needs=(built("handover_live_cases"), handover_board.missing),
    ),
    Scenario(
        "handover.booking_burst",
        Goal(
            "2,000 owners within one minute (>= 33.4 bookings/s), 0 errors, 0 "
            "overbooked (issue 15: owners of a 5,000-unit event book through their "
            "links, 50 at a time: page, then book)",
            "rps",
            round(handover_burst.OWNERS / 60 + 0.05, 1),
            higher_is_better=True,
            zero=("errors", "overbooked", "counter_mismatch", "held_seats_taken"),
        ),
        role="anonymous",
        setup=handover_burst.setup,
        action=handover_burst.run,
        repeat=1,
        concurrency=handover_burst.CLIENTS,
        needs=(built("handover_links"), handover_burst.missing),
    ),
    # After the burst: half the sampled units show their booking and QR code.
    Scenario(
        "handover.owner_page",
        Goal("p95 < 100 ms (an owner's booking page behind the link)", "p95_ms", 100),
        role="anonymous",
        requests=handover_burst.owner_pages,
        needs=(built("handover_links"), handover_burst.missing),
    ),
    # Before the scorecard page: it reads the rollups this builds.
    Scenario(
        "culture.scorecard_rebuild",
        Goal(
            "< 10 min: the scorecard's full rollup rebuild (TRUNCATE + one INSERT … "
            "SELECT over surveys, recoveries, tickets, work orders, contacts; today's "
            "snapshot of every customer), in the runner process, wall time",
            "p50_ms",
            600_000,
        ),
        role="admin",
        action=scorecard_rebuild,
        repeat=1,
        needs=(built("tickets"), built("surveys")),
    ),
    Scenario(
        "culture.scorecard",
        Goal(
            "p95 < 200 ms (the culture scorecard as a manager: each period, a team, a "
            "region, a three-year range, a drill-down; 1,000,000 surveys)",
            "p95_ms",
            200,
        ),
        role="manager",
        requests=scorecard_pages,
        needs=(built("tickets"), built("surveys"), built("recoveries")),
    ),
    Scenario(
        "culture.segment_dashboard",
        Goal(
            "p95 < 200 ms (a 4-rule segment's dashboard, 30/90/180 days, and its "
            "members, as a manager)",
            "p95_ms",
            200,
        ),
        role="manager",
        requests=segment_dashboard_pages,
        needs=(built("customers"), built("tickets"), built("payments")),
    ),
    Scenario(
        "culture.pareto",
        Goal(
            "p95 < 200 ms (a manager's value page: year, quarter, month, channel "
            "view, the 80 % list; 3,000,000 payments)",
            "p95_ms",
            200,
        ),
        role="manager",
        requests=pareto_pages,
        needs=(built("customers"), built("payments")),
    ),
    Scenario(
        "culture.segment_count",
        Goal(
            "p95 < 200 ms (live count of 4 rules: tier A, dealer, 华东, a complaint "
            "in 90 days, as a manager)",
            "p95_ms",
            200,
        ),
        role="manager",
        action=segment_count,
        repeat=30,
        needs=(built("customers"), built("tickets")),
    ),
    # Before the dashboard: it reads the rollups this builds.
    Scenario(
        "culture.rollup_rebuild",
        Goal(
            "< 10 min: the dashboard's full rollup rebuild (TRUNCATE + one INSERT … "
            "SELECT per table, in the runner process, wall time)",
            "p50_ms",
            600_000,
        ),
        role="admin",
        action=rollups_rebuild,
        repeat=1,
        needs=(built("deals"), built("payments")),
    ),
    Scenario(
        "culture.manager_dashboard",
        PAGE,
        role="manager",
        requests=manager_dashboards,
        needs=(built("deals"), built("payments"), rollups_built),
    ),
]
