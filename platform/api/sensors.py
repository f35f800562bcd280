"""Open sensor data for citizen developers: public devices, latest values, downsampled series.

Only devices marked public (city vehicles, environment sensors) are served; the registry refuses
to mark household energy or health devices public, so no route here can expose personal data.
Snowplows and buses are shown in real time; patrol cars and other official cars only as they were
15 minutes ago (:mod:`cityos.platform.vehicle_privacy`).
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from psycopg.rows import dict_row

from cityos.platform.api.responses import Encoded, Format, respond
from cityos.platform.api.series_rows import ANSWERS, BUILDERS, ROLLUPS, public_device, rolled_up_rows
from cityos.platform.api.snapshots import Snapshots
from cityos.platform.db.connection import aconnect, connect
from cityos.platform.vehicle_privacy import PUBLIC_POSITIONS, visible_sql, visible_until

router = APIRouter(prefix="/api/v1/sensors", tags=["open data"])

INTERVALS = {"1m": "1 minute", "1h": "1 hour", "1d": "1 day"}
AGGREGATES = {"avg": "avg", "min": "min", "max": "max", "sum": "sum", "count": "count"}
#: A series answer of more rows than this is encoded in a worker thread, not on the event loop (10,000 raw rows
#: take tens of milliseconds to render and compress: every other request of the process would wait).
ENCODE_IN_THREAD_ROWS = 1000
POSITION_METRICS = {"speed_kmh", "heading_deg", "gps_error_m", "accel_long", "accel_trans", "accel_vert"}


def _bbox(bbox: str | None) -> tuple[float, float, float, float] | None:
    if not bbox:
        return None
    try:
        west, south, east, north = (float(v) for v in bbox.split(","))
    except ValueError as exc:
        raise HTTPException(400, "bbox must be west,south,east,north in degrees") from exc
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise HTTPException(400, "bbox must be west,south,east,north with west<=east and south<=north")
    return west, south, east, north


def _near(near: str | None) -> tuple[float, float] | None:
    if not near:
        return None
    try:
        lon, lat = (float(v) for v in near.split(","))
    except ValueError as exc:
        raise HTTPException(400, "near must be lon,lat") from exc
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise HTTPException(400, "near must be lon,lat in degrees")
    return lon, lat


@router.get("", summary="Public devices / 公開センサー一覧")
def list_sensors(request: Request, domain: Literal["vehicle", "env"] | None = None, kind: str | None = None,
                 bbox: str | None = Query(None, description="west,south,east,north (WGS84)",
                                          examples=["139.9,37.48,139.96,37.51"]),
                 near: str | None = Query(None, description="lon,lat", examples=["139.9297,37.4947"]),
                 radius_m: float = Query(1000, gt=0, le=50_000),
                 format: Format = "json", limit: int = Query(1000, ge=1, le=10_000), offset: int = Query(0, ge=0)
                 ) -> Response:
    """Public devices with their latest position (vehicles). Filter by domain, kind, bbox or distance.

    公開されているセンサー（公用車・除雪車・環境センサー）と最新位置を返します。
    """
    box, point = _bbox(bbox), _near(near)
    sql = f"""
        select d.device_id, d.domain, d.kind, d.display_name, d.district_code,
               p.time as position_time, st_x(p.geom) as lon, st_y(p.geom) as lat, p.speed_kmh, p.heading_deg
        from core.devices d left join {PUBLIC_POSITIONS} p using (device_id)
        where d.public and d.revoked_at is null
          and (%(domain)s::text is null or d.domain = %(domain)s) and (%(kind)s::text is null or d.kind = %(kind)s)
          and (%(w)s::float8 is null or p.geom && st_makeenvelope(%(w)s, %(s)s, %(e)s, %(n)s, 4326))
          and (%(lon)s::float8 is null or st_dwithin(p.geom::geography, st_point(%(lon)s, %(lat)s, 4326)::geography,
                                                     %(r)s))
        order by d.device_id limit %(limit)s offset %(offset)s"""
    params = {"domain": domain, "kind": kind, "w": None, "s": None, "e": None, "n": None, "lon": None, "lat": None,
              "r": radius_m, "limit": limit, "offset": offset}
    if box:
        params.update(dict(zip("wsen", box, strict=True)))
    if point:
        params.update(lon=point[0], lat=point[1])
    with connect(autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql, params).fetchall()
    return respond(request, rows, format, max_age=5)


@router.get("/latest", summary="Latest values of many sensors / 最新値")
def latest(request: Request, metric: str | None = None, domain: Literal["vehicle", "env"] | None = None,
           ids: str | None = Query(None, description="comma-separated device ids"), format: Format = "json",
           limit: int = Query(10_000, ge=1, le=50_000)) -> Response:
    """The latest value of every public sensor (and metric) in one call. 全センサーの最新値を一度に取得します。"""
    id_list = [i for i in ids.split(",") if i] if ids else None
    snapshots = getattr(request.app.state, "latest_snapshots", None)
    if snapshots is None or id_list:  # a chosen few sensors: small, and too many combinations to keep
        return respond(request, _latest_rows(metric, domain, id_list, limit), format, max_age=5)
    key = (metric, domain, limit, format)
    encoded = snapshots.get(key, lambda: Encoded.of(_latest_rows(metric, domain, None, limit), format))
    return encoded.response(request, max_age=5)


def _latest_rows(metric: str | None, domain: str | None, id_list: list[str] | None, limit: int) -> list[dict]:
    sql = f"""
        select v.device_id, v.metric, v.time, v.value, v.label, st_x(p.geom) as lon, st_y(p.geom) as lat
        from telemetry.latest_values v join core.devices d using (device_id)
        left join {PUBLIC_POSITIONS} p using (device_id)
        where d.public and d.revoked_at is null and {visible_sql("d", "v.time")}
          and (%(metric)s::text is null or v.metric = %(metric)s)
          and (%(domain)s::text is null or d.domain = %(domain)s)
          and (%(ids)s::text[] is null or v.device_id = any(%(ids)s))
        order by v.device_id, v.metric limit %(limit)s"""
    with connect(autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql, {"metric": metric, "domain": domain, "ids": id_list, "limit": limit}).fetchall()
    positions_sql = f"""
        select p.device_id, 'position' as metric, p.time, null::float8 as value, null as label,
               st_x(p.geom) as lon, st_y(p.geom) as lat
        from {PUBLIC_POSITIONS} p join core.devices d using (device_id)
        where d.public and d.revoked_at is null and (%(ids)s::text[] is null or p.device_id = any(%(ids)s))
          and (%(metric)s::text is null or %(metric)s = 'position') order by p.device_id limit %(limit)s"""
    if domain in (None, "vehicle"):
        with connect(autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
            rows += cur.execute(positions_sql, {"ids": id_list, "metric": metric, "limit": limit}).fetchall()
    return rows


def _encode_cursor(t: datetime) -> str:
    return base64.urlsafe_b64encode(t.isoformat().encode()).decode()


def _decode_cursor(cursor: str) -> datetime:
    try:
        return datetime.fromisoformat(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(400, "invalid cursor") from exc


@router.get("/{device_id}/series", summary="Time series with downsampling / 時系列データ")
async def series(request: Request, device_id: str, metric: str,
           start: datetime | None = Query(None, description="inclusive, RFC 3339; default: end - 1 day"),
           end: datetime | None = Query(None, description="exclusive, RFC 3339; default: now"),
           interval: Literal["raw", "1m", "1h", "1d"] = Query(
               "raw", description="Bucket size; 1d buckets are local days of the city's time zone (CITYOS_TIMEZONE, "
               "default Asia/Tokyo), from local midnight to midnight"),
           agg: Literal["avg", "min", "max", "sum", "count"] = "avg",
           cursor: str | None = None, limit: int = Query(1000, ge=1, le=10_000), format: Format = "json") -> Response:
    """A public sensor's metric over time: raw or bucketed (1 min, 1 h, 1 day) with avg/min/max/sum/count.

    Buckets follow the city's time zone (``CITYOS_TIMEZONE``, default Asia/Tokyo, named in the answer's
    ``timezone``): a ``1d`` bucket is a local day, from local midnight to midnight, and its ``time`` is that
    midnight written in UTC (a JST day starts at 15:00Z the day before). Pages with ``cursor`` (returned as
    ``next_cursor``). 公開センサーの時系列（間引き・集計つき）。日単位の集計は市のタイムゾーン（既定: 日本時間）の
    0時から0時まで。
    """
    zone = request.app.state.settings.timezone
    settings = request.app.state.settings
    given_end = end
    end = end or datetime.now(UTC)
    start = start or end - timedelta(days=1)
    if start.tzinfo is None or end.tzinfo is None:
        raise HTTPException(400, "start and end need a UTC offset")
    if start >= end:
        raise HTTPException(400, "start must be before end")
    after = _decode_cursor(cursor) if cursor else None
    # an answer read before the roll-ups' watermarks is kept until a roll-up or the device registry changes
    keeper: Snapshots | None = getattr(request.app.state, "series_answers", None)
    keep_key = (device_id, metric, interval, agg, start, end, after, limit, format, zone) \
        if keeper is not None and given_end is not None and interval in ("1h", "1d") and settings.series_rollups \
        else None
    if keep_key is not None and keeper is not None and (hit := keeper.kept(keep_key)) is not None:
        return hit.response(request, max_age=60)
    building = keep_key
    lock = await BUILDERS.enter(building)  # one request per kept answer reads it, the others wait for it
    try:
        if keep_key is not None and keeper is not None and (hit := keeper.kept(keep_key)) is not None:
            return hit.response(request, max_age=60)
        generation = keeper.generation if keeper is not None else 0  # before the first statement
        async with aconnect(autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
            device = await public_device(cur, device_id, interval, zone)
            if device is None:
                raise HTTPException(404, f"no public sensor {device_id}")
            if device["domain"] == "vehicle":
                end = min(end, visible_until(device["kind"], datetime.now(UTC)))  # patrol cars: only DELAY old
                if end != given_end:
                    keep_key = None  # the visible range grows with the clock
                if metric not in POSITION_METRICS:
                    raise HTTPException(400, f"vehicle metrics: {', '.join(sorted(POSITION_METRICS))}")
                source = f"(select time, device_id, {metric} as value from telemetry.vehicle_positions) src"
            else:
                source = ("(select time, device_id, value from telemetry.measurements where metric = %(metric)s) src")
            params = {"metric": metric, "device": device_id, "start": start, "end": end, "after": after,
                      "limit": limit + 1, "tz": zone}
            rollup = ROLLUPS.get((device["domain"] == "vehicle", interval)) if settings.series_rollups else None
            answer_key = None
            if rollup is not None:
                rows, depends, settled = await rolled_up_rows(cur, rollup, device, source, AGGREGATES[agg], params,
                                                               settings.zone)
                answer_key = (device_id, metric, interval, agg, start, after, limit, format, zone, depends)
                if not settled:
                    keep_key = None  # raw rows after the watermarks: read again next time
            else:
                time_col = "time" if interval == "raw" else f"time_bucket('{INTERVALS[interval]}', time, %(tz)s)"
                value_col = "value" if interval == "raw" else f"{AGGREGATES[agg]}(value)"
                group = "" if interval == "raw" else "group by 1"
                sql = (f"select {time_col} as time, {value_col} as value from {source} where device_id = %(device)s "
                       f"and time >= %(start)s and time < %(end)s {group} ")
                sql = f"select * from ({sql}) s where (%(after)s::timestamptz is null or time > %(after)s) " \
                      f"order by time limit %(limit)s"
                rows = await (await cur.execute(sql, params)).fetchall()
        if answer_key is not None and (encoded := ANSWERS.get(answer_key)) is not None:
            if keep_key is not None and keeper is not None:
                keeper.put(keep_key, generation, encoded)
            return encoded.response(request, max_age=60)
        next_cursor = _encode_cursor(rows[limit - 1]["time"]) if len(rows) > limit else None
        rows = rows[:limit]
        extra = {"device_id": device_id, "metric": metric, "interval": interval,
                 "agg": agg if interval != "raw" else None, "next_cursor": next_cursor,
                 "timezone": zone if interval != "raw" else None}
        if answer_key is None:
            if len(rows) > ENCODE_IN_THREAD_ROWS:
                return await asyncio.to_thread(respond, request, rows, format, max_age=60, extra=extra)
            return respond(request, rows, format, max_age=60, extra=extra)
        encoded = await asyncio.to_thread(Encoded.of, rows, format, extra) if len(rows) > ENCODE_IN_THREAD_ROWS \
            else Encoded.of(rows, format, extra)
        ANSWERS.put(answer_key, encoded)
        if keep_key is not None and keeper is not None:
            keeper.put(keep_key, generation, encoded)
        return encoded.response(request, max_age=60)
    finally:
        BUILDERS.leave(building, lock)
