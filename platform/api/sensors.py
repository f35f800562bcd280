"""Open sensor data for citizen developers: public devices, latest values, downsampled series.

Only devices marked public (city vehicles, environment sensors) are served; the registry refuses
to mark household energy or health devices public, so no route here can expose personal data.
Snowplows and buses are shown in real time; patrol cars and other official cars only as they were
15 minutes ago (:mod:`cityos.platform.vehicle_privacy`).
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from psycopg.rows import dict_row

from cityos.platform.api.responses import Encoded, Format, respond
from cityos.platform.api.snapshots import Snapshots
from cityos.platform.db.connection import aconnect, connect
from cityos.platform.db.series_rollups import BY_NAME, Rollup, bucket_ceil, bucket_floor
from cityos.platform.vehicle_privacy import PUBLIC_POSITIONS, visible_sql, visible_until

router = APIRouter(prefix="/api/v1/sensors", tags=["open data"])

INTERVALS = {"1m": "1 minute", "1h": "1 hour", "1d": "1 day"}
AGGREGATES = {"avg": "avg", "min": "min", "max": "max", "sum": "sum", "count": "count"}
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


#: (vehicle?, interval) -> the roll-up that holds that interval's complete buckets.
ROLLUPS = {(False, "1h"): BY_NAME["measurements_hourly"], (False, "1d"): BY_NAME["measurements_daily"],
           (True, "1h"): BY_NAME["vehicle_positions_hourly"], (True, "1d"): BY_NAME["vehicle_positions_daily"]}


class _RolledRows:
    """Rows before the watermark this process read (complete buckets from the roll-up, the partial one at the
    range's start from raw rows), per range and roll-up version (they do not change until a write to the roll-up
    bumps its version), least recently used first out."""

    MAX_ROWS = 200_000

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple, list[dict]] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()

    def get(self, key: tuple) -> list[dict] | None:
        with self._lock:
            rows = self._entries.get(key)
            if rows is not None:
                self._entries.move_to_end(key)
            return rows

    def put(self, key: tuple, rows: list[dict]) -> None:
        with self._lock:
            if key in self._entries or len(rows) > self.MAX_ROWS:
                return
            self._entries[key] = rows
            self._rows += len(rows)
            while self._rows > self.MAX_ROWS:
                self._rows -= len(self._entries.popitem(last=False)[1])


_ROLLED = _RolledRows()


class _Answers:
    """Series answers this process encoded (plain and gzip, with their ETag), by everything they depend on: the
    request, the roll-up's version and the raw rows read after its watermark. A request whose rows are the same
    as an earlier one's is sent those bytes again instead of being encoded and compressed once more (the
    answer is exact: any new reading changes the key). At most :attr:`MAX` answers, least recently used out."""

    MAX = 256

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple, Encoded] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Encoded | None:
        with self._lock:
            encoded = self._entries.get(key)
            if encoded is not None:
                self._entries.move_to_end(key)
            return encoded

    def put(self, key: tuple, encoded: Encoded) -> None:
        with self._lock:
            self._entries[key] = encoded
            while len(self._entries) > self.MAX:
                self._entries.popitem(last=False)


_ANSWERS = _Answers()


class _Builders:
    """A lock per kept answer being read: when a change drops a popular answer, one request reads it again and
    the others waiting for the same answer get the kept one (no stampede of identical reads)."""

    def __init__(self) -> None:
        self._held: dict[tuple, tuple[asyncio.Lock, int]] = {}

    async def enter(self, key: tuple | None) -> asyncio.Lock | None:
        """Wait for ``key``'s lock (None: nothing to wait for)."""
        if key is None:
            return None
        lock, users = self._held.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._held[key] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:  # the client went away while waiting
            self._forget(key, lock)
            raise
        return lock

    def leave(self, key: tuple | None, lock: asyncio.Lock | None) -> None:
        """Release ``key``'s lock; forget it when no one else waits."""
        if key is None or lock is None:
            return
        lock.release()
        self._forget(key, lock)

    def _forget(self, key: tuple, lock: asyncio.Lock) -> None:
        _, users = self._held[key]
        if users <= 1:
            del self._held[key]
        else:
            self._held[key] = (lock, users - 1)


_BUILDERS = _Builders()


#: How a bucket's value is made of partial aggregates (sum, count, min, max) of its parts: hourly roll-up rows
#: and raw rows alike (the daily roll-up is made of the hourly one the same way).
COMBINE = {"avg": "sum(sum) / nullif(sum(count), 0)", "min": "min(min)", "max": "max(max)", "sum": "sum(sum)",
           "count": "sum(count)"}


async def _rolled_up_rows(cur, rollup: Rollup, device: dict, source: str, agg: str, params: dict, zone: ZoneInfo
                          ) -> tuple[list[dict], tuple, bool]:
    """Buckets from the roll-up where it is complete (whole buckets inside the range, before its watermark),
    and elsewhere from the finer roll-up it is built of (a daily bucket after the daily watermark is made of
    the complete hours the hourly roll-up holds) and from raw rows: the partial bucket at the range's start,
    and whatever no roll-up holds yet (the current hour); ordered, after the cursor, at most
    ``params["limit"]``. Also what the rows depend on besides the request (the roll-ups' versions and the raw
    rows read), to know an answer already encoded, and whether they were all read before the watermarks (the
    answer then changes only when a roll-up or the device does)."""
    done = device["done"]
    lo = bucket_ceil(params["start"], rollup.step, zone)
    hi = bucket_floor(params["end"], rollup.step, zone)
    if done is not None:
        hi = min(hi, done)
    if done is None or hi <= lo:
        lo = hi = params["start"]  # no complete rolled-up bucket in the range: all from raw rows
    params.update(lo=lo, hi=hi)
    raw = (f"select time_bucket('{rollup.width}', time, %(tz)s) as time, {agg}(value) as value from {source} "
           "where device_id = %(device)s and time >= {} and time < {} group by 1 order by 1")
    # plain ranges and no prepared statement (a generic plan would keep every chunk): TimescaleDB excludes the
    # other chunks of each range while planning
    kept: list[dict] = []
    if lo < hi:
        # everything before ``hi`` lies before the watermark: the complete buckets and the partial one at the
        # start change only when the roll-up does (its version), so they are read once per range and version
        key = (rollup.name, params["device"], params["metric"], params["tz"], agg, params["start"], lo, hi,
               device["version"])
        if (cached := _ROLLED.get(key)) is None:
            head = await (await cur.execute(raw.format("%(start)s", "%(lo)s"), params, prepare=False)).fetchall() \
                if params["start"] < lo else []
            body = await (await cur.execute(
                f"select bucket as time, {agg} as value from {rollup.table} where device_id = %(device)s and metric "
                "= %(metric)s and zone = %(tz)s and bucket >= %(lo)s and bucket < %(hi)s order by bucket", params)
            ).fetchall()
            cached = [*head, *body]
            _ROLLED.put(key, cached)
        kept = cached
    tail, depends, settled = await _tail(cur, rollup, device, source, agg, params, zone, raw)
    rows = [*kept, *tail]
    if params["after"] is not None:
        rows = [r for r in rows if r["time"] > params["after"]]
    return rows[:params["limit"]], (device["version"], lo, hi, depends), settled


async def _tail(cur, rollup: Rollup, device: dict, source: str, agg: str, params: dict, zone: ZoneInfo, raw: str
                ) -> tuple[list[dict], tuple, bool]:
    """The buckets after the watermark ``params["hi"]`` up to the range's end, what they depend on, and whether
    no raw row was read for them.

    A daily roll-up's tail (today, or a day the last pass has not closed yet) is made of the hourly roll-up's
    complete hours and raw rows only after the hourly watermark: a range ending in the past reads no raw row
    at all, and one ending now reads the current hour's. The hourly part alone changes only with the hourly
    roll-up's version, so it is read once per range and version."""
    hi, end = params["hi"], params["end"]
    if hi >= end:
        return [], (), True
    finer = BY_NAME.get(rollup.after or "")
    fine_done = device.get("fine_done")
    if finer is None or fine_done is None or fine_done <= hi:
        rows = await (await cur.execute(raw.format("%(hi)s", "%(end)s"), params, prepare=False)).fetchall()
        return rows, tuple((r["time"], r["value"]) for r in rows), False
    mid = min(bucket_floor(end, finer.step, zone), fine_done)
    params.update(mid=mid)
    hours = (f"select bucket as t, sum, count, min, max from {finer.table} where device_id = %(device)s "
             "and metric = %(metric)s and zone = %(tz)s and bucket >= %(hi)s and bucket < %(mid)s")
    if mid >= end:  # all in complete hours
        key = (finer.name, params["device"], params["metric"], params["tz"], agg, hi, end, device["fine_version"])
        if (rows := _ROLLED.get(key)) is None:
            rows = await (await cur.execute(
                f"select time_bucket('{rollup.width}', t, %(tz)s) as time, {COMBINE[agg]} as value "
                f"from ({hours}) parts group by 1 order by 1", params)).fetchall()
            _ROLLED.put(key, rows)
        return rows, (device["fine_version"],), True
    rows = await (await cur.execute(
        f"select time_bucket('{rollup.width}', t, %(tz)s) as time, {COMBINE[agg]} as value from ({hours} "
        "union all select time, value, (value is not null)::int, value, value from "
        f"{source} where device_id = %(device)s and time >= %(mid)s and time < %(end)s) parts group by 1 order by 1",
        params, prepare=False)).fetchall()
    return rows, (device["fine_version"], tuple((r["time"], r["value"]) for r in rows)), False


def _names(rollup: Rollup | None) -> tuple[str, str]:
    """A roll-up's name and the name of the finer one it is built from ('' for none)."""
    return (rollup.name, rollup.after or "") if rollup else ("", "")


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
    lock = await _BUILDERS.enter(building)  # one request per kept answer reads it, the others wait for it
    try:
        if keep_key is not None and keeper is not None and (hit := keeper.kept(keep_key)) is not None:
            return hit.response(request, max_age=60)
        generation = keeper.generation if keeper is not None else 0  # before the first statement
        async with aconnect(autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
            # the device and, in the same round trip, how far its interval's roll-up is complete
            (vehicle, vehicle_after), (other, other_after) = (_names(ROLLUPS.get((True, interval))),
                                                              _names(ROLLUPS.get((False, interval))))
            device = await (await cur.execute(
                "select d.domain, d.kind, w.done_until as done, w.version, f.done_until as fine_done, "
                "f.version as fine_version from core.devices d "
                "left join cityos_meta.rollup_watermarks w on w.zone = %(tz)s "
                "and w.rollup = case when d.domain = 'vehicle' then %(vehicle)s else %(other)s end "
                "left join cityos_meta.rollup_watermarks f on f.zone = %(tz)s "
                "and f.rollup = case when d.domain = 'vehicle' then %(vehicle_after)s else %(other_after)s end "
                "where d.device_id = %(device)s and d.public and d.revoked_at is null",
                {"tz": zone, "device": device_id, "vehicle": vehicle, "other": other, "vehicle_after": vehicle_after,
                 "other_after": other_after})).fetchone()
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
                rows, depends, settled = await _rolled_up_rows(cur, rollup, device, source, AGGREGATES[agg], params,
                                                               settings.zone)
                answer_key = (device_id, metric, interval, agg, start, end, after, limit, format, zone, depends)
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
        if answer_key is not None and (encoded := _ANSWERS.get(answer_key)) is not None:
            if keep_key is not None and keeper is not None:
                keeper.put(keep_key, generation, encoded)
            return encoded.response(request, max_age=60)
        next_cursor = _encode_cursor(rows[limit - 1]["time"]) if len(rows) > limit else None
        rows = rows[:limit]
        extra = {"device_id": device_id, "metric": metric, "interval": interval,
                 "agg": agg if interval != "raw" else None, "next_cursor": next_cursor,
                 "timezone": zone if interval != "raw" else None}
        if answer_key is None:
            return respond(request, rows, format, max_age=60, extra=extra)
        encoded = Encoded.of(rows, format, extra)
        _ANSWERS.put(answer_key, encoded)
        if keep_key is not None and keeper is not None:
            keeper.put(keep_key, generation, encoded)
        return encoded.response(request, max_age=60)
    finally:
        _BUILDERS.leave(building, lock)


#: Announced by every statement that changes a series roll-up or the device registry (migration 0020).
SERIES_CHANNEL = "cityos_series_changed"


def series_answers(database_url: str) -> Snapshots:
    """The series answers one API process keeps (started by the app): those read wholly before the roll-ups'
    watermarks, valid until :data:`SERIES_CHANNEL` announces a change, and at most a minute (their max-age)."""
    return Snapshots(database_url, max_age_s=60, channel=SERIES_CHANNEL, name="series-answers",
                     max_entries=1024).start()
