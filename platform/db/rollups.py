"""Roll-ups declared once, recomputed for exactly the buckets that received rows, however old.

A roll-up is declared by one :class:`Rollup` in :data:`ROLLUPS`: its relation, the raw table it
summarises, its bucket width and its select list. The ingest writer marks, in the same transaction as
the rows, each declared roll-up's buckets that a batch touched (``cityos_meta.rollup_dirty``); a
maintenance pass claims the marks and recomputes those buckets from the raw table:

- Apache-only build (``rollup_mode`` ``platform_table``): the platform's own table; the bucket's rows
  are deleted and inserted again from the raw rows, in one transaction.
- community build (``continuous_aggregate``): ``refresh_continuous_aggregate`` over each run of
  adjacent touched buckets (outside the policy's 30-day window too).

Claiming takes a short ``share`` lock on the marks: it waits for batches that marked a bucket and
have not committed yet, so every row a claimed mark stands for is visible to the recompute; a batch
that commits later marks the bucket afresh (claimed marks do not absorb new ones).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg


@dataclass(frozen=True)
class Rollup:
    """A roll-up of ``source`` in buckets of ``width``; ``select`` lists the columns' expressions in the
    order of ``columns`` (the first is the bucket), grouped by the first ``group_by`` of them."""

    name: str
    source: str
    width: timedelta
    columns: tuple[str, ...] = ()
    select: str = ""
    group_by: int = 0
    #: A roll-up kept by its own code (the series roll-ups, cut in the city's time zone): called with the
    #: touched ``[start, end)`` windows and the zone instead of the generic recompute; returns rows written.
    refresh: Callable[[psycopg.Connection, list[tuple[datetime, datetime]], str], int] | None = None

    def bucket_of(self, t: datetime) -> datetime:
        """The start of the bucket holding ``t`` (buckets are aligned to the Unix epoch, as ``time_bucket``'s)."""
        step = int(self.width.total_seconds())
        ts = t.timestamp()
        return datetime.fromtimestamp(ts - ts % step, t.tzinfo)


ENERGY_HOURLY = Rollup(
    name="telemetry.energy_hourly", source="telemetry.energy_readings", width=timedelta(hours=1),
    columns=("bucket", "device_id", "metric", "avg", "min", "max", "sum", "count"),
    select="time_bucket('1 hour', time), device_id, metric, avg(value), min(value), max(value), sum(value), "
           "count(*)",
    group_by=3)

def _series(source: str) -> Rollup:
    """The hourly and daily series roll-ups of ``source`` (:mod:`cityos.platform.db.series_rollups`)."""
    def refresh(conn: psycopg.Connection, touched: list[tuple[datetime, datetime]], zone: str) -> int:
        from cityos.platform.db.series_rollups import recompute_touched

        return recompute_touched(conn, source, touched, zone)

    return Rollup(name=f"series:{source}", source=source, width=timedelta(hours=1), refresh=refresh)


#: Every roll-up the maintenance job keeps right. Add one declaration to add one.
ROLLUPS: tuple[Rollup, ...] = (ENERGY_HOURLY, _series("telemetry.measurements"),
                               _series("telemetry.vehicle_positions"))


def rollups_of(source: str) -> tuple[Rollup, ...]:
    """The declared roll-ups that summarise the raw table ``source``."""
    return tuple(r for r in ROLLUPS if r.source == source)


def mark_dirty(cur: psycopg.Cursor, buckets: dict[str, set[datetime]]) -> None:
    """Mark ``buckets`` (roll-up name -> bucket starts) for recomputation, in the caller's transaction."""
    names, starts = [], []
    for name, marks in sorted(buckets.items()):
        for bucket in sorted(marks):
            names.append(name)
            starts.append(bucket)
    if names:
        cur.execute("insert into cityos_meta.rollup_dirty (rollup, bucket) "
                    "select * from unnest(%s::text[], %s::timestamptz[]) on conflict do nothing", (names, starts))


def claim(conn: psycopg.Connection, run_id: int) -> dict[str, list[datetime]]:
    """Claim the unclaimed marks for the pass ``run_id``; every claimed bucket (also ones a crashed pass left),
    per roll-up. Commits."""
    with conn.transaction():
        conn.execute("lock table cityos_meta.rollup_dirty in share mode")
        conn.execute("update cityos_meta.rollup_dirty set claimed = %s where claimed = 0", (run_id,))
    out: dict[str, list[datetime]] = {}
    # distinct: a bucket a crashed pass claimed may be claimed again (joined twice, its rows would count twice)
    for name, bucket in conn.execute("select distinct rollup, bucket from cityos_meta.rollup_dirty "
                                     "where claimed <> 0 order by 1, 2").fetchall():
        out.setdefault(name, []).append(bucket)
    return out


def _recompute_table(conn: psycopg.Connection, rollup: Rollup, buckets: list[datetime]) -> int:
    cols = ", ".join(rollup.columns)
    groups = ", ".join(str(i) for i in range(1, rollup.group_by + 1))
    with conn.transaction():
        conn.execute(f"delete from {rollup.name} where bucket = any(%s)", (buckets,))
        written = conn.execute(
            f"insert into {rollup.name} ({cols}) select {rollup.select} from {rollup.source} "
            f"join unnest(%(b)s::timestamptz[]) as touched(start) "
            f"on time >= touched.start and time < touched.start + %(w)s group by {groups}",
            {"b": buckets, "w": rollup.width}).rowcount
        conn.execute("delete from cityos_meta.rollup_dirty where rollup = %s and claimed <> 0 "
                     "and bucket = any(%s)", (rollup.name, buckets))
    return written


def windows(buckets: list[datetime], width: timedelta) -> list[tuple[datetime, datetime]]:
    """Adjacent buckets merged into ``[start, end)`` windows."""
    out: list[tuple[datetime, datetime]] = []
    for b in sorted(buckets):
        if out and out[-1][1] == b:
            out[-1] = (out[-1][0], b + width)
        else:
            out.append((b, b + width))
    return out


def _refresh_aggregate(conn: psycopg.Connection, rollup: Rollup, buckets: list[datetime]) -> int:
    # refresh_continuous_aggregate cannot run inside a transaction block: each window commits by itself,
    # and the marks go only after every window was refreshed (a crash in between refreshes again, harmlessly).
    was = conn.autocommit
    conn.autocommit = True
    try:
        for start, end in windows(buckets, rollup.width):
            conn.execute("call refresh_continuous_aggregate(%s::regclass, %s::timestamptz, %s::timestamptz)",
                         (rollup.name, start, end))
        conn.execute("delete from cityos_meta.rollup_dirty where rollup = %s and claimed <> 0 "
                     "and bucket = any(%s)", (rollup.name, buckets))
    finally:
        conn.autocommit = was
    return len(buckets)


def recompute(conn: psycopg.Connection, run_id: int, mode: str, zone: str = "UTC") -> dict[str, int]:
    """Recompute every marked bucket; per roll-up, rows written (``platform_table``) or buckets refreshed.
    ``zone``: the city's time zone, for roll-ups cut in it."""
    claimed = claim(conn, run_id)
    done: dict[str, int] = {}
    for rollup in ROLLUPS:
        buckets = claimed.get(rollup.name)
        if not buckets:
            continue
        if rollup.refresh is not None:
            done[rollup.name] = rollup.refresh(conn, windows(buckets, rollup.width), zone)
            conn.execute("delete from cityos_meta.rollup_dirty where rollup = %s and claimed <> 0 "
                         "and bucket = any(%s)", (rollup.name, buckets))
        elif mode == "platform_table":
            done[rollup.name] = _recompute_table(conn, rollup, buckets)
        else:
            done[rollup.name] = _refresh_aggregate(conn, rollup, buckets)
    return done
