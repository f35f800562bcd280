"""Temporal evolution of entities (``/temporal/entities``) from the hypertables, raw or aggregated.

Each attribute's instances come from the table its domain writes (``telemetry.energy_readings``,
``measurements``, ``health_readings``; a vehicle's ``speed``, ``heading`` and ``location`` from
``telemetry.vehicle_positions``), bounded by ``timerel``/``timeAt``/``endTimeAt`` and ``lastN``.
Aggregation (``aggrMethods`` over ``aggrPeriodDuration``) runs in the database with ``time_bucket``;
an hourly (or coarser, whole-hour) average, minimum, maximum, sum or count of household energy is read
from the hourly roll-up ``telemetry.energy_hourly`` for the hours it holds. Anonymous callers see a
patrol car's track only up to 15 minutes ago, as on every open route.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from cityos.ingest.catalog import TABLE_BY_DOMAIN
from cityos.ingest.ngsild.entities import _property, iso
from cityos.ingest.ngsild.model import VEHICLE_ATTRS, unit_code
from cityos.ingest.ngsild.problems import NgsiError
from cityos.platform.vehicle_privacy import visible_sql

AGGREGATES = {"totalCount": "count(*)", "distinctCount": "count(distinct value)", "sum": "sum(value)",
              "avg": "avg(value)", "min": "min(value)", "max": "max(value)", "stddev": "stddev_samp(value)",
              "sumsq": "sum(value * value)"}
MAX_INSTANCES = 1000
MAX_BUCKETS = 10_000
_DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$|^P(?P<w>\d+)W$")


@dataclass(frozen=True)
class Window:
    """The time interval of a temporal query, and how many instances per attribute."""

    start: datetime | None
    end: datetime | None
    last_n: int | None


def _time(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError as exc:
        raise NgsiError("BadRequestData", f"{name} is not a date-time") from exc
    if moment.tzinfo is None:
        raise NgsiError("BadRequestData", f"{name} needs a UTC offset or Z")
    return moment


def window(timerel: str | None, time_at: str | None, end_time_at: str | None, last_n: int | None) -> Window:
    """The window of ``timerel`` (before, after, between) and its times."""
    if last_n is not None and not 1 <= last_n <= MAX_INSTANCES:
        raise NgsiError("BadRequestData", f"lastN is between 1 and {MAX_INSTANCES}")
    if timerel is None:
        if time_at or end_time_at:
            raise NgsiError("BadRequestData", "timeAt needs timerel")
        return Window(None, None, last_n)
    if time_at is None:
        raise NgsiError("BadRequestData", "timerel needs timeAt")
    at = _time(time_at, "timeAt")
    if timerel == "before":
        return Window(None, at, last_n)
    if timerel == "after":
        return Window(at, None, last_n)
    if timerel == "between":
        if end_time_at is None:
            raise NgsiError("BadRequestData", "timerel=between needs endTimeAt")
        end = _time(end_time_at, "endTimeAt")
        if end <= at:
            raise NgsiError("BadRequestData", "endTimeAt must be after timeAt")
        return Window(at, end, last_n)
    raise NgsiError("BadRequestData", "timerel is before, after or between")


def period(duration: str | None) -> timedelta | None:
    """``aggrPeriodDuration`` (ISO 8601: ``PT1H``, ``P1D``, ``P1W``) as a length; at least one minute."""
    if duration is None:
        return None
    m = _DURATION.match(duration)
    if not m or duration in ("P", "PT"):
        raise NgsiError("BadRequestData", "aggrPeriodDuration is an ISO 8601 duration in weeks, days, hours, "
                                          "minutes or seconds (PT1H, P1D, P1W)")
    parts = {k: int(v) for k, v in m.groupdict().items() if v}
    length = timedelta(weeks=parts.get("w", 0), days=parts.get("d", 0), hours=parts.get("h", 0),
                       minutes=parts.get("m", 0), seconds=parts.get("s", 0))
    if length < timedelta(minutes=1):
        raise NgsiError("BadRequestData", "aggrPeriodDuration is at least one minute")
    return length


def methods(value: str | None) -> list[str]:
    """The aggregation methods asked for."""
    names = [m.strip() for m in (value or "").split(",") if m.strip()]
    unknown = [m for m in names if m not in AGGREGATES]
    if unknown or not names:
        raise NgsiError("BadRequestData", f"aggrMethods: one or more of {', '.join(AGGREGATES)}")
    return names


def _source(domain: str, attr: str) -> tuple[str, str] | None:
    """(table, value expression) of an attribute's history; None when it has none."""
    if domain == "vehicle":
        if attr in VEHICLE_ATTRS:
            return "telemetry.vehicle_positions", VEHICLE_ATTRS[attr][0]
        return None
    return TABLE_BY_DOMAIN[domain], "value"


def _bounds(win: Window, public_vehicle: str | None) -> tuple[str, dict]:
    conds, params = [], {}
    if win.start is not None:
        conds.append("src.time >= %(start)s")
        params["start"] = win.start
    if win.end is not None:
        conds.append("src.time < %(end)s")
        params["end"] = win.end
    if public_vehicle:
        conds.append(public_vehicle)
    return "".join(f" and {c}" for c in conds), params


def instances(conn: psycopg.Connection, row: dict, attr: str, win: Window, *, staff: bool) -> list[dict] | None:
    """Instances of one attribute of one entity (newest first with lastN, else oldest first)."""
    domain, device = row["domain"], row["device_id"]
    privacy = None if staff or domain != "vehicle" else visible_sql("d", "src.time")
    where, params = _bounds(win, privacy)
    order = "desc" if win.last_n else "asc"
    limit = min(win.last_n or MAX_INSTANCES, MAX_INSTANCES)
    if domain == "vehicle" and attr == "location":
        sql = (f"select src.time, st_asgeojson(src.geom, 7)::json as value, null as label "
               f"from telemetry.vehicle_positions src join core.devices d using (device_id) "
               f"where src.device_id = %(device)s{where} order by src.time {order} limit %(limit)s")
        rows = conn.execute(sql, {**params, "device": device, "limit": limit}).fetchall()
        out = [{"type": "GeoProperty", "value": value, "observedAt": iso(t)} for t, value, _ in rows]
        return out[::-1] if win.last_n else out
    source = _source(domain, attr)
    if source is None:
        return None
    table, column = source
    metric_cond = "" if domain == "vehicle" else " and src.metric = %(metric)s"
    label = "src.label" if table in ("telemetry.health_readings",) else "null"
    sql = (f"select src.time, src.{column} as value, {label} as label from {table} src join core.devices d "
           f"using (device_id) where src.device_id = %(device)s{metric_cond}{where} "
           f"and src.{column} is not null order by src.time {order} limit %(limit)s")
    rows = conn.execute(sql, {**params, "device": device, "metric": attr, "limit": limit}).fetchall()
    unit = VEHICLE_ATTRS[attr][1] if domain == "vehicle" else unit_code(domain, attr)
    out = [_property(lbl if lbl is not None else float(v), t, unit) for t, v, lbl in rows]
    return out[::-1] if win.last_n else out


def aggregated(conn: psycopg.Connection, row: dict, attr: str, win: Window, names: list[str], length: timedelta,
               *, staff: bool) -> dict | None:
    """``{"type": "Property", method: [[value, start, end], ...]}`` of one attribute over ``win``."""
    domain, device = row["domain"], row["device_id"]
    source = _source(domain, attr)
    if source is None:
        return None
    start = win.start or datetime.now(UTC) - timedelta(days=30)
    end = win.end or datetime.now(UTC)
    if (end - start) / length > MAX_BUCKETS:
        raise NgsiError("TooManyResults", f"at most {MAX_BUCKETS} periods: shorten the interval or lengthen "
                                          "aggrPeriodDuration")
    table, column = source
    if domain == "hems" and _from_rollup(names, length, start):
        return _rollup(conn, device, attr, start, end, names, length)
    privacy = "" if staff or domain != "vehicle" else f" and {visible_sql('d', 'src.time')}"
    metric_cond = "" if domain == "vehicle" else " and src.metric = %(metric)s"
    aggs = ", ".join(f"{AGGREGATES[n].replace('value', f'src.{column}')} as {n}" for n in names)
    sql = (f"select time_bucket(%(length)s, src.time, %(origin)s) as bucket, {aggs} from {table} src "
           f"join core.devices d using (device_id) where src.device_id = %(device)s{metric_cond} "
           f"and src.time >= %(start)s and src.time < %(end)s and src.{column} is not null{privacy} "
           f"group by 1 order by 1")
    rows = conn.execute(sql, {"length": length, "origin": start, "device": device, "metric": attr,
                              "start": start, "end": end}).fetchall()
    return _aggregate_property(rows, names, length)


def _from_rollup(names: list[str], length: timedelta, start: datetime) -> bool:
    hourly = {"avg", "min", "max", "sum", "totalCount"}
    return set(names) <= hourly and length % timedelta(hours=1) == timedelta(0) and \
        start.astimezone(UTC).minute == start.second == start.microsecond == 0


def _rollup(conn: psycopg.Connection, device: str, attr: str, start: datetime, end: datetime, names: list[str],
            length: timedelta) -> dict:
    """Whole-hour periods of household energy from the hourly roll-up for settled hours (before the
    previous hour); the recent hours, and any the roll-up does not hold yet, from the raw readings."""
    combine = {"avg": "sum(sum) / nullif(sum(count), 0)", "min": "min(min)", "max": "max(max)", "sum": "sum(sum)",
               "totalCount": "sum(count)"}
    aggs = ", ".join(f"{combine[n]} as {n}" for n in names)
    sql = f"""
        with hourly as (
            select bucket, avg, min, max, sum, count from telemetry.energy_hourly
            where device_id = %(device)s and metric = %(metric)s and bucket >= %(start)s and bucket < %(end)s
              and bucket < %(settled)s
            union all
            select time_bucket('1 hour', time), avg(value), min(value), max(value), sum(value), count(*)
            from telemetry.energy_readings r
            where device_id = %(device)s and metric = %(metric)s and time >= %(start)s and time < %(end)s
              and (time >= %(settled)s or not exists (
                  select 1 from telemetry.energy_hourly h where h.device_id = r.device_id
                  and h.metric = r.metric and h.bucket = time_bucket('1 hour', r.time)))
            group by 1)
        select time_bucket(%(length)s, bucket, %(start)s) as b, {aggs} from hourly group by 1 order by 1"""
    settled = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    rows = conn.execute(sql, {"device": device, "metric": attr, "start": start, "end": end, "length": length,
                              "settled": settled}).fetchall()
    return _aggregate_property(rows, names, length)


def _aggregate_property(rows: list[tuple], names: list[str], length: timedelta) -> dict:
    prop: dict = {"type": "Property"}
    for i, name in enumerate(names):
        prop[name] = [[None if r[i + 1] is None else float(r[i + 1]), iso(r[0]), iso(r[0] + length)] for r in rows]
    return prop
