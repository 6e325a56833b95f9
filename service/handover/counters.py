"""The live board's counters (BoardCounter): bumped in the same transaction that
changes a case, a station visit or a defect, read by the board in one query.

Keys (one convention for every writer; the board and `rebuild` read the same):

    case:<UnitHandover.State>              cases in that state now
    station:<station id>:<StationVisit.State>   visits in that state now
    station:<station id>:wait_s            seconds waited (queued → started), summed
    station:<station id>:served            visits started (the wait's divisor)
    station:<station id>:service_s         seconds in service (started → finished)
    station:<station id>:done              visits finished
    hour:<YYYYMMDDHH>:arrived              check-ins in that local hour
    hour:<YYYYMMDDHH>:finished             cases that reached an outcome
    defect:severity:<P0|P1|P2>             defects recorded
    defect:category:<level-1 category id>  defects recorded, by trade
    defect:open                            defects not closed, void or force-closed
    fees:cents                             fees collected, in fen
    rating:sum, rating:count               the quick satisfaction ratings

A counter moves only inside the caller's transaction (`bump` is an upsert that adds),
so a rolled-back change leaves no trace; concurrent bumps of one key queue on its row
for the length of the other transaction, no longer.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import connection


def bump(event_id: int, deltas: Mapping[str, int]) -> None:
    """Add each delta to its key (created at 0 when new); zero deltas are skipped.
    Keys are sorted so two transactions bumping the same keys lock them in one order."""
    changes = sorted((key, int(delta)) for key, delta in deltas.items() if delta)
    if not changes:
        return
    # One statement, not executemany: pghistory's context wrapper (an audited block)
    # breaks executemany's parameters.
    rows = ", ".join(["(%s, %s, %s)"] * len(changes))
    params: list[object] = []
    for key, delta in changes:
        params.extend((event_id, key, delta))
    sql = (
        "INSERT INTO handover_boardcounter (event_id, key, value) "  # noqa: S608
        f"VALUES {rows} ON CONFLICT (event_id, key) "  # placeholders only
        "DO UPDATE SET value = handover_boardcounter.value + EXCLUDED.value"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)  # nosec B608 - every value is a parameter


def read(event_id: int) -> dict[str, int]:
    from service.handover.models import BoardCounter

    return dict(
        BoardCounter.objects.filter(event_id=event_id).values_list("key", "value")
    )
