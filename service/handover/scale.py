"""The 入伙 bench data (`seed_scale`, `make bench`): one published 集中交付 event of
5,000 units, whatever the size of the customer table.

滨江壹号, one phase, 20 buildings of 250 units (25 floors, two entrances of five rooms).
Every unit has a primary owner (the i-th person among the customers) and every tenth
a co-owner; all 5,000 are in the event's scope (one in 37 not eligible: arrears), in
four batches of five buildings. Each batch has its own day of 18 half-hour slots of
80 households, 8 of them held for walk-ins, and an open booking window. Every unit's
primary owner has one live personal link.

Each table is one set-based INSERT (crm/core/scale.py); the rows find each other by
code (the project's, the buildings', the units'), never by an id assumed here. The
event is dated from the build; `bench/handover_burst.py` moves it back to two weeks
ahead, reopens the windows and clears the bookings before each burst, so data reused
weeks later still measures the same thing.
"""

from __future__ import annotations

from crm.core.scale import Dataset, lit

UNITS = 5_000
BUILDINGS = 20
UNITS_PER_BUILDING = UNITS // BUILDINGS
BATCHES = 4
SLOTS_PER_DAY = 18
SLOT_CAPACITY = 80
WALK_IN_HOLD = 8
CO_OWNER_EVERY = 10
NOT_ELIGIBLE_EVERY = 37
PROJECT_CODE = "BENCH-BJ"
EVENT_NAME = "滨江壹号 集中交付（压测）"
DAYS_AHEAD = 14
SIZES = {"small": UNITS, "full": UNITS}

_PROJECT = f"(SELECT id FROM property_project WHERE code = {lit(PROJECT_CODE)})"  # noqa: S608 - generator constants
_EVENT = f"(SELECT id FROM handover_handoverevent WHERE name = {lit(EVENT_NAME)})"  # noqa: S608 - generator constants
_UNIT_CODE = f"{lit(PROJECT_CODE + '-')} || lpad(%s::text, 5, '0')"


def unit_code(n: str) -> str:
    return _UNIT_CODE % n


PROJECT = Dataset(
    name="handover_project",
    model="property.Project",
    rows={"small": 1, "full": 1},
    columns={
        "code": lit(PROJECT_CODE),
        "name": lit("滨江壹号"),
        "city": lit("杭州"),
        "developer": lit("滨江置业"),
    },
)

PHASE = Dataset(
    name="handover_phase",
    model="property.Phase",
    rows={"small": 1, "full": 1},
    columns={"project_id": _PROJECT, "code": lit("P1"), "name": lit("一期")},
)

BUILDING_ROWS = Dataset(
    name="handover_buildings",
    model="property.Building",
    rows={"small": BUILDINGS, "full": BUILDINGS},
    columns={
        "phase_id": f"(SELECT ph.id FROM property_phase ph WHERE ph.project_id = {_PROJECT})",  # noqa: S608 - generator constants
        "code": "lpad(i::text, 2, '0')",
        "name": "i || '栋'",
    },
)

# Unit i: building 1 + (i-1)/250, floor 1..25, entrance 1..2, rooms 01..05.
UNIT_ROWS = Dataset(
    name="handover_units",
    model="property.Unit",
    rows=SIZES,
    joins=(
        "JOIN property_building bl ON bl.code = lpad(b.building::text, 2, '0') "  # noqa: S608 - generator constants
        f"AND bl.phase_id = (SELECT ph.id FROM property_phase ph "
        f"WHERE ph.project_id = {_PROJECT})"
    ),
    base={
        "building": f"1 + (i - 1) / {UNITS_PER_BUILDING}",
        "floor_no": f"1 + mod(i - 1, {UNITS_PER_BUILDING}) / 10",
        "entrance_no": "1 + mod(i - 1, 10) / 5",
        "room_no": "1 + mod(i - 1, 5)",
    },
    columns={
        "building_id": "bl.id",
        "entrance": "b.entrance_no::text",
        "floor": "b.floor_no",
        "room": "(b.floor_no * 100 + b.room_no)::text",
        "code": unit_code("i"),
        "layout": "CASE WHEN b.room_no IN (1, 5) THEN '三室两厅' ELSE '两室两厅' END",
        "fit_out": "'finished'",
        "contract_area": "CASE WHEN b.room_no IN (1, 5) THEN 118.50 ELSE 89.20 END",
    },
)

# Owners are persons: the k-th person among the customers owns unit k; co-owners of
# every tenth unit come after the 5,000 primary owners.
OWNERSHIPS = Dataset(
    name="handover_ownerships",
    model="property.UnitOwnership",
    rows={
        "small": UNITS + UNITS // CO_OWNER_EVERY,
        "full": UNITS + UNITS // CO_OWNER_EVERY,
    },
    joins=(
        f"JOIN property_unit u ON u.code = {unit_code('b.unit_no')} "  # noqa: S608 - generator constants
        "JOIN (SELECT c.id, row_number() OVER (ORDER BY c.id) AS k "
        "FROM customers_customer c WHERE NOT c.is_organization "
        "AND c.merged_into_id IS NULL) AS pc ON pc.k = b.i"
    ),
    base={
        "unit_no": f"CASE WHEN i <= {UNITS} THEN i ELSE (i - {UNITS}) * {CO_OWNER_EVERY} END",
    },
    columns={
        "unit_id": "u.id",
        "customer_id": "pc.id",
        "role": f"CASE WHEN b.i <= {UNITS} THEN 'primary' ELSE 'co_owner' END",
        "contract_no": "'HT-2024-' || lpad(b.unit_no::text, 5, '0')",
        "is_active": "true",
    },
)

EVENT = Dataset(
    name="handover_event",
    model="handover.HandoverEvent",
    rows={"small": 1, "full": 1},
    columns={
        "name": lit(EVENT_NAME),
        "kind": "'concentrated'",
        "project_id": _PROJECT,
        "project_name": lit("滨江壹号"),
        "venue": lit("滨江壹号售楼处一楼大厅"),
        "start_date": f"current_date + {DAYS_AHEAD}",
        "end_date": f"current_date + {DAYS_AHEAD + BATCHES - 1}",
        "status": "'published'",
        "owner_cutoff_hours": "24",
        "walk_in_release_time": "'12:00'::time",
        "created_by_id": "(SELECT id FROM accounts_user WHERE username = 'admin')",
    },
)

BATCH_ROWS = Dataset(
    name="handover_batches",
    model="handover.Batch",
    rows={"small": BATCHES, "full": BATCHES},
    columns={
        "event_id": _EVENT,
        "name": (
            "'第' || i || '批（' || ((i - 1) * 5 + 1) || '–' || (i * 5) || '栋）'"
        ),
        "booking_opens_at": "now() - interval '1 day'",
        "booking_closes_at": f"now() + interval '{DAYS_AHEAD - 1} days'",
    },
)

_BATCH_BY_NUMBER = (
    "JOIN (SELECT bt.id, row_number() OVER (ORDER BY bt.id) AS n "  # noqa: S608 - generator constants
    f"FROM handover_batch bt WHERE bt.event_id = {_EVENT}) AS bn "
)

SLOT_ROWS = Dataset(
    name="handover_slots",
    model="handover.TimeSlot",
    rows={"small": BATCHES * SLOTS_PER_DAY, "full": BATCHES * SLOTS_PER_DAY},
    joins=_BATCH_BY_NUMBER + "ON bn.n = b.batch_no",
    base={
        "batch_no": f"1 + (i - 1) / {SLOTS_PER_DAY}",
        "k": f"mod(i - 1, {SLOTS_PER_DAY})",
    },
    columns={
        "event_id": _EVENT,
        "date": f"current_date + {DAYS_AHEAD} + (b.batch_no - 1)::int",
        "start_time": "'08:30'::time + make_interval(mins => 30 * b.k::int)",
        "end_time": "'09:00'::time + make_interval(mins => 30 * b.k::int)",
        "capacity": str(SLOT_CAPACITY),
        "booked_count": "0",
        "walk_in_hold": str(WALK_IN_HOLD),
        "batch_id": "bn.id",
    },
)

EVENT_UNITS = Dataset(
    name="handover_event_units",
    model="handover.EventUnit",
    rows=SIZES,
    joins=(
        f"JOIN property_unit u ON u.code = {unit_code('b.i')} "
        + _BATCH_BY_NUMBER
        + "ON bn.n = b.batch_no"
    ),
    base={"batch_no": f"1 + (i - 1) / {UNITS // BATCHES}"},
    columns={
        "event_id": _EVENT,
        "unit_id": "u.id",
        "batch_id": "bn.id",
        "eligibility": (
            f"CASE WHEN mod(i, {NOT_ELIGIBLE_EVERY}) = 0 THEN 'arrears' "
            "ELSE 'eligible' END"
        ),
    },
)

# The primary owner's link to each unit: the nonce is repeatable, the token is made
# from it by the runner (links.token_for), as a notice would.
LINKS = Dataset(
    name="handover_links",
    model="handover.OwnerLink",
    rows=SIZES,
    joins=(
        f"JOIN property_unit u ON u.code = {unit_code('b.i')} "
        "JOIN handover_eventunit eu ON eu.unit_id = u.id "
        f"AND eu.event_id = {_EVENT} "
        "JOIN property_unitownership o ON o.unit_id = u.id AND o.role = 'primary' "
        "AND o.is_active"
    ),
    columns={
        "event_unit_id": "eu.id",
        "holder_id": "o.customer_id",
        "nonce": "substr(md5('bench-link-' || i), 1, 16)",
        "expires_at": "now() + interval '60 days'",
    },
)

DATASETS = [
    PROJECT,
    PHASE,
    BUILDING_ROWS,
    UNIT_ROWS,
    OWNERSHIPS,
    EVENT,
    BATCH_ROWS,
    SLOT_ROWS,
    EVENT_UNITS,
    LINKS,
]
