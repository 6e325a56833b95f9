"""The 入伙 bench data on the day (`seed_scale`, `make bench`): a second event over the
same 5,000 units of 滨江壹号 (service/handover/scale.py), dated today and in full swing,
for the live board and the on-site scenarios (handover.board, .checkin, .station,
.defect).

- six stations (identity, documents, fees, inspection, keys, survey), one to three
  counters each;
- 4,000 units arrived (from 8 h before the build, 5 s apart), their cases in every state by unit number
  mod 20: 10 accepted, 2 accepted with defects, 1 not accepted, 1 refused, 3 in
  progress, 3 checked in; 250 more absent; the last 750 not arrived (check-in targets);
- a visit per case and station: finished cases done everywhere (queued 5 min, served
  8 min), cases in progress done at two stations and in service at the third, checked-in
  cases waiting at the first;
- 3,000 defects over the arrived units, every severity and open state, in four trades
  (three-level categories made here);
- a property-fee payment per finished case and a rating on most, a refusal record per
  refused case.

The board's counters are not generated: the bench runs counters.rebuild once (not
timed) before measuring, the same recount `handover_board_rebuild` does.
"""

from __future__ import annotations

from crm.core.scale import Dataset, array, lit
from service.handover.scale import PROJECT_CODE, UNITS, unit_code

EVENT_NAME = "滨江壹号 集中交付（现场压测）"
ARRIVED = 4_000
ABSENT = 250
CASES = ARRIVED + ABSENT
STATIONS = ["identity", "documents", "fees", "inspection", "keys", "survey"]
STATION_NAMES = ["身份核验", "资料审核", "缴费", "联合验房", "钥匙交接", "满意度评价"]
DEFECTS = 3_000
TRADES = ["土建工程", "门窗工程", "水电安装", "装饰装修"]
ONE = {"small": 1, "full": 1}

_PROJECT = f"(SELECT id FROM property_project WHERE code = {lit(PROJECT_CODE)})"  # noqa: S608 - generator constants
LIVE_EVENT = f"(SELECT id FROM handover_handoverevent WHERE name = {lit(EVENT_NAME)})"  # noqa: S608 - generator constants
_ADMIN = "(SELECT id FROM accounts_user WHERE username = 'admin')"
# The case of unit number n (1..CASES) of the live event.
_CASE_OF = (
    "JOIN property_unit u ON u.code = {unit} "
    "JOIN handover_eventunit eu ON eu.unit_id = u.id AND eu.event_id = "
    + LIVE_EVENT
    + " JOIN handover_unithandover c ON c.event_unit_id = eu.id AND c.round = 1"
)
# State by unit number: mod 20 → 0-9 accepted, 10-11 with defects, 12 not accepted,
# 13 refused, 14-16 in progress, 17-19 checked in; ARRIVED+1..CASES absent.
_STATE = (
    f"CASE WHEN i > {ARRIVED} THEN 'absent' "
    "WHEN mod(i, 20) < 10 THEN 'accepted' "
    "WHEN mod(i, 20) < 12 THEN 'accepted_defects' "
    "WHEN mod(i, 20) = 12 THEN 'not_accepted' "
    "WHEN mod(i, 20) = 13 THEN 'refused' "
    "WHEN mod(i, 20) < 17 THEN 'in_progress' ELSE 'checked_in' END"
)

EVENT = Dataset(
    name="handover_event_5000",
    model="handover.HandoverEvent",
    rows=ONE,
    columns={
        "name": lit(EVENT_NAME),
        "kind": "'concentrated'",
        "project_id": _PROJECT,
        "project_name": lit("滨江壹号"),
        "venue": lit("滨江壹号会所"),
        "start_date": "current_date",
        "end_date": "current_date + 1",
        "status": "'published'",
        "owner_cutoff_hours": "24",
        "walk_in_release_time": "'12:00'::time",
        "created_by_id": _ADMIN,
    },
)

STATION_ROWS = Dataset(
    name="handover_live_stations",
    model="handover.StationDefinition",
    rows={"small": len(STATIONS), "full": len(STATIONS)},
    columns={
        "event_id": LIVE_EVENT,
        "code": f"{array(STATIONS)}[i]",
        "name": f"{array(STATION_NAMES)}[i]",
        "position": "i",
        "required": "true",
        "counters": "1 + mod(i, 3)",
        "target_minutes": "10",
    },
)

EVENT_UNITS = Dataset(
    name="handover_live_event_units",
    model="handover.EventUnit",
    rows={"small": UNITS, "full": UNITS},
    joins=f"JOIN property_unit u ON u.code = {unit_code('b.i')}",
    columns={"event_id": LIVE_EVENT, "unit_id": "u.id", "eligibility": "'eligible'"},
)

CASE_ROWS = Dataset(
    name="handover_live_cases",
    model="handover.UnitHandover",
    rows={"small": CASES, "full": CASES},
    joins=(
        f"JOIN property_unit u ON u.code = {unit_code('b.i')} "
        f"JOIN handover_eventunit eu ON eu.unit_id = u.id AND eu.event_id = {LIVE_EVENT} "
        "JOIN property_unitownership o ON o.unit_id = u.id AND o.role = 'primary' "
        "AND o.is_active"
    ),
    base={
        "state": _STATE,
        # From 8 h before the build, 5 s apart: the last arrives 2.4 h before it, so
        # every outcome (arrival + 90 min) and visit is in the past.
        "arrived": "now() - interval '8 hours' + make_interval(secs => 5 * i)",
    },
    columns={
        "event_id": LIVE_EVENT,
        "event_unit_id": "eu.id",
        "customer_id": "o.customer_id",
        "round": "1",
        "state": "b.state",
        "queue_date": "CASE WHEN b.state <> 'absent' THEN current_date END",
        "queue_number": "CASE WHEN b.state <> 'absent' THEN b.i END",
        "attendee": "'owner'",
        "checked_in_at": "b.arrived",
        "started_at": (
            "CASE WHEN b.state NOT IN ('checked_in', 'absent') "
            "THEN b.arrived + interval '5 minutes' END"
        ),
        "outcome_at": (
            "CASE WHEN b.state NOT IN ('checked_in', 'in_progress') "
            "THEN b.arrived + interval '90 minutes' END"
        ),
        "finished_at": (
            "CASE WHEN b.state NOT IN ('checked_in', 'in_progress', 'absent') "
            "THEN b.arrived + interval '90 minutes' END"
        ),
        "rating": (
            "CASE WHEN b.state IN ('accepted', 'accepted_defects') "
            "AND mod(b.i, 7) <> 0 THEN 3 + mod(b.i, 3) END"
        ),
        "version": "1",
    },
)

# Visit n: case 1 + (n-1)/6 at station position 1 + (n-1) mod 6.
VISIT_ROWS = Dataset(
    name="handover_live_visits",
    model="handover.StationVisit",
    rows={"small": ARRIVED * len(STATIONS), "full": ARRIVED * len(STATIONS)},
    base={
        "case_no": f"1 + (i - 1) / {len(STATIONS)}",
        "k": f"1 + mod(i - 1, {len(STATIONS)})",
    },
    joins=(
        _CASE_OF.format(unit=unit_code("b.case_no"))
        + f" JOIN handover_stationdefinition s ON s.event_id = {LIVE_EVENT} "
        "AND s.position = b.k"
    ),
    columns={
        "case_id": "c.id",
        "station_id": "s.id",
        "state": (
            "CASE WHEN c.state NOT IN ('checked_in', 'in_progress') THEN 'done' "
            "WHEN c.state = 'in_progress' AND b.k <= 2 THEN 'done' "
            "WHEN c.state = 'in_progress' AND b.k = 3 THEN 'in_service' "
            "WHEN c.state = 'checked_in' AND b.k = 1 THEN 'waiting' "
            "ELSE 'pending' END"
        ),
        "queued_at": (
            "CASE WHEN c.state NOT IN ('checked_in', 'in_progress') "
            "OR (c.state = 'in_progress' AND b.k <= 3) "
            "OR (c.state = 'checked_in' AND b.k = 1) "
            "THEN c.checked_in_at + make_interval(mins => 13 * (b.k - 1)::int) END"
        ),
        "started_at": (
            "CASE WHEN c.state NOT IN ('checked_in', 'in_progress') "
            "OR (c.state = 'in_progress' AND b.k <= 3) "
            "THEN c.checked_in_at + make_interval(mins => 13 * (b.k - 1)::int + 5) END"
        ),
        "finished_at": (
            "CASE WHEN c.state NOT IN ('checked_in', 'in_progress') "
            "OR (c.state = 'in_progress' AND b.k <= 2) "
            "THEN c.checked_in_at + make_interval(mins => 13 * (b.k - 1)::int + 13) END"
        ),
        "counter": "CASE WHEN c.state <> 'checked_in' THEN 1 END",
        "operator_id": f"CASE WHEN c.state <> 'checked_in' THEN {_ADMIN} END",
        "version": "1",
    },
)

# Categories: four trades (level 1), each with one part (2) and one symptom (3).
TRADE_ROWS = Dataset(
    name="handover_live_trades",
    model="defects.DefectCategory",
    rows={"small": len(TRADES), "full": len(TRADES)},
    columns={
        "level": "1",
        "name": f"{array(TRADES)}[i]",
        "default_severity": "'P2'",
        "position": "i",
    },
)
_TRADE = (
    "JOIN defects_defectcategory t ON t.level = 1 AND t.parent_id IS NULL "
    f"AND t.name = {array(TRADES)}[b.i]"
)
PART_ROWS = Dataset(
    name="handover_live_parts",
    model="defects.DefectCategory",
    rows={"small": len(TRADES), "full": len(TRADES)},
    joins=_TRADE,
    columns={
        "parent_id": "t.id",
        "level": "2",
        "name": "'通用'",
        "default_severity": "'P2'",
        "position": "1",
    },
)
LEAF_ROWS = Dataset(
    name="handover_live_symptoms",
    model="defects.DefectCategory",
    rows={"small": len(TRADES), "full": len(TRADES)},
    joins=_TRADE + " JOIN defects_defectcategory p ON p.parent_id = t.id",
    columns={
        "parent_id": "p.id",
        "level": "3",
        "name": "'质量问题'",
        "default_severity": "'P2'",
        "position": "1",
    },
)

_DEFECT_STATES = ["open", "assigned", "in_progress", "ready", "closed", "in_dispute"]
DEFECT_ROWS = Dataset(
    name="handover_live_defects",
    model="defects.Defect",
    rows={"small": DEFECTS, "full": DEFECTS},
    base={
        "case_no": f"1 + mod((i - 1) * 4, {ARRIVED}) + (i - 1) / {ARRIVED}",
        "trade": f"1 + mod(i, {len(TRADES)})",
    },
    joins=(
        _CASE_OF.format(unit=unit_code("b.case_no"))
        + " JOIN defects_defectcategory t ON t.level = 1 AND t.parent_id IS NULL "
        f"AND t.name = {array(TRADES)}[b.trade] "
        "JOIN defects_defectcategory p ON p.parent_id = t.id "
        "JOIN defects_defectcategory leaf ON leaf.parent_id = p.id"
    ),
    columns={
        "unit_id": "u.id",
        "case_id": "c.id",
        "event_id": LIVE_EVENT,
        "source": "'handover'",
        "room": f"{array(['living', 'kitchen', 'bathroom', 'master', 'balcony'])}"
        "[1 + mod(i, 5)]",
        "category_id": "leaf.id",
        "description": "'墙面空鼓开裂（压测）'",
        "severity": "CASE WHEN mod(i, 10) = 0 THEN 'P0' "
        "WHEN mod(i, 10) < 4 THEN 'P1' ELSE 'P2' END",
        "state": f"{array(_DEFECT_STATES)}[1 + mod(i / 10, {len(_DEFECT_STATES)})]",
        "due_at": "c.checked_in_at + interval '3 days'",
        "rework_rounds": "0",
        "reported_by_id": _ADMIN,
        "created_at": "c.checked_in_at + interval '40 minutes'",  # in the past
        "version": "1",
    },
)

FEE_ROWS = Dataset(
    name="handover_live_fees",
    model="handover.FeePayment",
    rows={"small": ARRIVED, "full": ARRIVED},
    source=(
        "generate_series({start}::bigint, {stop}) AS g(i) "
        f"WHERE mod(i, 20) < 14 AND i <= {ARRIVED}"
    ),
    joins=_CASE_OF.format(unit=unit_code("b.i")),
    columns={
        "case_id": "c.id",
        "item": "'property_fee'",
        "amount": "3600.00 + mod(b.i, 7) * 120",
        "method": "'wechat'",
        "cashier_id": _ADMIN,
    },
)

REFUSAL_ROWS = Dataset(
    name="handover_live_refusals",
    model="handover.RefusalRecord",
    rows={"small": ARRIVED, "full": ARRIVED},
    source=(
        "generate_series({start}::bigint, {stop}) AS g(i) "
        f"WHERE mod(i, 20) = 13 AND i <= {ARRIVED}"
    ),
    joins=_CASE_OF.format(unit=unit_code("b.i")),
    columns={
        "case_id": "c.id",
        "reason": "'quality'",
        "details": "'外墙渗水，要求整改后再收楼（压测）'",
        "notice_deadline": "current_date",
        "recorded_by_id": _ADMIN,
    },
)

DATASETS = [
    EVENT,
    STATION_ROWS,
    EVENT_UNITS,
    CASE_ROWS,
    VISIT_ROWS,
    TRADE_ROWS,
    PART_ROWS,
    LEAF_ROWS,
    DEFECT_ROWS,
    FEE_ROWS,
    REFUSAL_ROWS,
]
