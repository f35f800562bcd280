"""Hourly and daily roll-ups behind long-range series, declared in one list: :data:`SERIES_ROLLUPS`.

A year of daily averages read from raw rows is 52,560 rows per sensor at one reading every 10
minutes; from the daily roll-up it is 365. Each :class:`Rollup` says which table it fills, from which
source table, with which bucket width and with which ``select`` (the buckets of the source rows whose
time lies in ``[%(from)s, %(to)s)``, in the time zone ``%(tz)s``). Buckets follow the city's time zone
(``CITYOS_TIMEZONE``), so each roll-up row carries its ``zone``: changing the setting fills the new
zone's buckets from the start, and the old ones are never read.

How far a roll-up is complete is kept per roll-up and zone in ``cityos_meta.rollup_watermarks``
(``done_until``: every bucket before it is rolled up; ``version``: bumped by every write, so a reader may
keep rolled-up rows until it changes — a recompute of touched buckets must bump it too). The series route
reads the roll-up for complete buckets before ``done_until`` and raw rows for the rest (the current,
incomplete bucket and whatever the last maintenance pass has not reached yet), so answers stay exact and fresh.

Refreshing (:func:`refresh_series_rollups`, every maintenance pass, on both TimescaleDB editions: a
continuous aggregate cannot take the time zone as a setting): each pass rolls up from ``done_until``
minus a short look-back (:data:`LATE_LOOKBACK`, for readings that arrive a little late) to the start of
the current bucket, in slices of :data:`SLICE` so that a first pass over a long history stays bounded.
Readings arriving later than that are the business of the touched-bucket recompute
(:mod:`cityos.platform.db.rollups` declares one marker per raw table and calls
:func:`recompute_touched`). The daily roll-ups are built from the hourly
ones (a local day is a whole number of local hours in every zone, also across DST changes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

from cityos.platform.db.scalar import scalar

LATE_LOOKBACK = timedelta(hours=2)
SLICE = timedelta(days=7)
LOCK_ID = 0x726F6C6C  # "roll"
COLUMNS = "zone, bucket, device_id, metric, avg, min, max, sum, count"


@dataclass(frozen=True)
class Rollup:
    """One roll-up: ``table`` filled from ``source`` in buckets of ``width`` by ``select``."""

    name: str
    table: str
    source: str
    width: str  # a PostgreSQL interval: '1 hour' or '1 day'
    select: str  # (bucket, device_id, metric, avg, min, max, sum, count) for [%(from)s, %(to)s) in %(tz)s
    after: str | None = None  # the roll-up this one is built from (its done_until bounds this one)

    @property
    def step(self) -> timedelta:
        return timedelta(days=1) if self.width == "1 day" else timedelta(hours=1)


def _from_raw(source_rows: str) -> str:
    return f"""
        select time_bucket('1 hour', time, %(tz)s) as bucket, device_id, metric,
               avg(value), min(value), max(value), sum(value), count(value)
        from ({source_rows}) src
        where time >= %(from)s and time < %(to)s and value is not null
        group by 1, 2, 3"""


#: How a bucket's avg, min, max, sum and count are made of the partial aggregates (sum, count, min, max) of its
#: parts: the daily roll-up of the hourly one, and the series route's buckets of rolled-up hours and raw rows.
COMBINE = {"avg": "sum(sum) / nullif(sum(count), 0)", "min": "min(min)", "max": "max(max)", "sum": "sum(sum)",
           "count": "sum(count)"}


def _from_hourly(hourly_table: str) -> str:
    return f"""
        select time_bucket('1 day', bucket, %(tz)s) as bucket, device_id, metric,
               {", ".join(COMBINE[a] for a in ("avg", "min", "max", "sum", "count"))}
        from {hourly_table}
        where zone = %(tz)s and bucket >= %(from)s and bucket < %(to)s
        group by 1, 2, 3"""


MEASUREMENTS = "select time, device_id, metric, value from telemetry.measurements"
#: The metrics of a vehicle position that the series route serves (one column each in the source).
POSITION_METRICS = ("speed_kmh", "heading_deg", "gps_error_m", "accel_long", "accel_trans", "accel_vert")
VEHICLE_POSITIONS = ("select p.time, p.device_id, m.metric, m.value from telemetry.vehicle_positions p "
                     "cross join lateral (values " + ", ".join(f"('{m}', p.{m}::float8)" for m in POSITION_METRICS)
                     + ") m(metric, value)")

#: Every roll-up behind the series route, in refresh order (an hourly roll-up before the daily one built on it).
SERIES_ROLLUPS: list[Rollup] = [
    Rollup("measurements_hourly", "telemetry.measurements_hourly", "telemetry.measurements", "1 hour",
           _from_raw(MEASUREMENTS)),
    Rollup("measurements_daily", "telemetry.measurements_daily", "telemetry.measurements_hourly", "1 day",
           _from_hourly("telemetry.measurements_hourly"), after="measurements_hourly"),
    Rollup("vehicle_positions_hourly", "telemetry.vehicle_positions_hourly", "telemetry.vehicle_positions",
           "1 hour", _from_raw(VEHICLE_POSITIONS)),
    Rollup("vehicle_positions_daily", "telemetry.vehicle_positions_daily", "telemetry.vehicle_positions_hourly",
           "1 day", _from_hourly("telemetry.vehicle_positions_hourly"), after="vehicle_positions_hourly"),
]
BY_NAME = {r.name: r for r in SERIES_ROLLUPS}


def bucket_floor(t: datetime, step: timedelta, zone: ZoneInfo) -> datetime:
    """The start of the local hour or local day holding ``t`` (what ``time_bucket(width, t, zone)`` gives)."""
    local = t.astimezone(zone)
    if step >= timedelta(days=1):
        return datetime(local.year, local.month, local.day, tzinfo=zone).astimezone(t.tzinfo)
    return local.replace(minute=0, second=0, microsecond=0).astimezone(t.tzinfo)


def bucket_ceil(t: datetime, step: timedelta, zone: ZoneInfo) -> datetime:
    """The start of the first local hour or day at or after ``t``."""
    floor = bucket_floor(t, step, zone)
    if floor == t:
        return t
    return bucket_floor(floor + step + timedelta(hours=2 if step >= timedelta(days=1) else 0), step, zone)


def watermark(conn: psycopg.Connection, name: str, zone: str) -> datetime | None:
    """Every bucket of roll-up ``name`` in ``zone`` before this time is complete (None: nothing yet)."""
    row = conn.execute("select done_until from cityos_meta.rollup_watermarks where rollup = %s and zone = %s",
                       (name, zone)).fetchone()
    return row[0] if row else None


def _refresh_one(conn: psycopg.Connection, rollup: Rollup, zone: str, now: datetime) -> int:
    tz = ZoneInfo(zone)
    until = bucket_floor(now, rollup.step, tz)
    if rollup.after is not None:
        before = watermark(conn, rollup.after, zone)
        if before is None:
            return 0
        until = min(until, bucket_floor(before, rollup.step, tz))
    done = watermark(conn, rollup.name, zone)
    if done is None:
        first = scalar(conn.execute(f"select min({'time' if rollup.after is None else 'bucket'}) "
                                    f"from {rollup.source}"))
        start = bucket_floor(first, rollup.step, tz) if first else until
    else:
        start = bucket_floor(min(done - LATE_LOOKBACK, until), rollup.step, tz)
    written = 0
    while start < until:
        stop = min(until, bucket_ceil(start + SLICE, rollup.step, tz))
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (LOCK_ID,))  # one refresher at a time (API processes)
            changed = conn.execute(_upsert(rollup), {"tz": zone, "from": start, "to": stop}).rowcount
            if changed or done is None or stop > done:
                _advance(conn, rollup.name, zone, stop)
            written += changed
        start = stop
    if done is None or until > done:
        _advance(conn, rollup.name, zone, until)
    return written


def _upsert(rollup: Rollup) -> str:
    """Roll up ``[%(from)s, %(to)s)`` into ``rollup``'s table; its row count says how many buckets are new or
    different (a bucket rolled up again to the same figures is not written: readers keep what they read)."""
    return (f"insert into {rollup.table} as t ({COLUMNS}) select %(tz)s, * from ({rollup.select}) r "
            "on conflict (device_id, metric, zone, bucket) do update set avg = excluded.avg, "
            "min = excluded.min, max = excluded.max, sum = excluded.sum, count = excluded.count "
            "where (t.avg, t.min, t.max, t.sum, t.count) is distinct from "
            "(excluded.avg, excluded.min, excluded.max, excluded.sum, excluded.count)")


def _advance(conn: psycopg.Connection, name: str, zone: str, until: datetime) -> None:
    conn.execute("insert into cityos_meta.rollup_watermarks (rollup, zone, done_until) values (%s, %s, %s) "
                 "on conflict (rollup, zone) do update set done_until = greatest("
                 "cityos_meta.rollup_watermarks.done_until, excluded.done_until), "
                 "version = nextval('cityos_meta.rollup_versions')", (name, zone, until))


def recompute_touched(conn: psycopg.Connection, source: str, windows: list[tuple[datetime, datetime]],
                      zone: str) -> int:
    """Roll up again the buckets of every roll-up of raw table ``source`` (and the daily ones built on them)
    that hold ``windows`` of late readings, however old; only what the roll-ups already cover (a later pass
    of :func:`refresh_series_rollups` takes the rest). Bumps each version, so readers drop kept rows."""
    tz = ZoneInfo(zone)
    written = 0
    for hourly in (r for r in SERIES_ROLLUPS if r.source == source):
        for rollup in (hourly, *(r for r in SERIES_ROLLUPS if r.after == hourly.name)):
            done = watermark(conn, rollup.name, zone)
            if done is None:
                continue
            changed = 0
            for start, end in windows:
                lo, hi = bucket_floor(start, rollup.step, tz), min(bucket_ceil(end, rollup.step, tz), done)
                if lo >= hi:
                    continue
                with conn.transaction():
                    conn.execute("select pg_advisory_xact_lock(%s)", (LOCK_ID,))
                    changed += conn.execute(_upsert(rollup), {"tz": zone, "from": lo, "to": hi}).rowcount
            if changed:
                _advance(conn, rollup.name, zone, done)  # same watermark, new version
            written += changed
    return written


def refresh_series_rollups(conn: psycopg.Connection, zone: str, now: datetime | None = None) -> dict[str, int]:
    """Bring every roll-up of :data:`SERIES_ROLLUPS` up to the current bucket in ``zone``; rows written each."""
    now = now or scalar(conn.execute("select now()"))
    return {r.name: _refresh_one(conn, r, zone, now) for r in SERIES_ROLLUPS}
