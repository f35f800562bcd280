"""The rows of a public sensor's series read from the roll-ups, and what one API process keeps of them.

Complete buckets before a roll-up's watermark come from the roll-up (read once per range and roll-up version),
a daily bucket the daily roll-up has not closed from the hourly roll-up's complete hours, and only what no
roll-up holds yet (the current hour, the partial bucket at the range's start) from raw rows. Answers already
encoded are sent again while their inputs are unchanged (:class:`Answers`); those read wholly before the
watermarks are kept until a roll-up or the device registry changes (:func:`series_answers`, announced on
:data:`SERIES_CHANNEL` by migration 0020), with one request per answer reading it again after a change.
The route is :func:`cityos.platform.api.sensors.series`.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from zoneinfo import ZoneInfo

from cityos.platform.api.responses import Encoded
from cityos.platform.api.snapshots import Snapshots
from cityos.platform.db.series_rollups import BY_NAME, COMBINE, Rollup, bucket_ceil, bucket_floor

#: (vehicle?, interval) -> the roll-up that holds that interval's complete buckets.
ROLLUPS = {(False, "1h"): BY_NAME["measurements_hourly"], (False, "1d"): BY_NAME["measurements_daily"],
           (True, "1h"): BY_NAME["vehicle_positions_hourly"], (True, "1d"): BY_NAME["vehicle_positions_daily"]}


class RolledRows:
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


ROLLED = RolledRows()


class Answers:
    """Series answers this process encoded (plain and gzip, with their ETag), by everything they depend on: the
    request (not its end: a range up to now ends elsewhere each time, the rows it gave are in the key), the
    roll-ups' versions and the raw rows read after their watermarks. A request whose rows are the same
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


ANSWERS = Answers()


class Builders:
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


BUILDERS = Builders()


async def rolled_up_rows(cur, rollup: Rollup, device: dict, source: str, agg: str, params: dict, zone: ZoneInfo
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
        if (cached := ROLLED.get(key)) is None:
            head = await (await cur.execute(raw.format("%(start)s", "%(lo)s"), params, prepare=False)).fetchall() \
                if params["start"] < lo else []
            body = await (await cur.execute(
                f"select bucket as time, {agg} as value from {rollup.table} where device_id = %(device)s and metric "
                "= %(metric)s and zone = %(tz)s and bucket >= %(lo)s and bucket < %(hi)s order by bucket", params)
            ).fetchall()
            cached = [*head, *body]
            ROLLED.put(key, cached)
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
        if (rows := ROLLED.get(key)) is None:
            rows = await (await cur.execute(
                f"select time_bucket('{rollup.width}', t, %(tz)s) as time, {COMBINE[agg]} as value "
                f"from ({hours}) parts group by 1 order by 1", params)).fetchall()
            ROLLED.put(key, rows)
        return rows, (device["fine_version"], end), True
    rows = await (await cur.execute(
        f"select time_bucket('{rollup.width}', t, %(tz)s) as time, {COMBINE[agg]} as value from ({hours} "
        "union all select time, value, (value is not null)::int, value, value from "
        f"{source} where device_id = %(device)s and time >= %(mid)s and time < %(end)s) parts group by 1 order by 1",
        params, prepare=False)).fetchall()
    return rows, (device["fine_version"], tuple((r["time"], r["value"]) for r in rows)), False


def _names(rollup: Rollup | None) -> tuple[str, str]:
    """A roll-up's name and the name of the finer one it is built from ('' for none)."""
    return (rollup.name, rollup.after or "") if rollup else ("", "")


async def public_device(cur, device_id: str, interval: str, zone: str) -> dict | None:
    """The public, not revoked device ``device_id`` (domain, kind) and, in the same round trip, how far the
    roll-up of ``interval`` and the finer one it is built from are complete (``done``, ``version``,
    ``fine_done``, ``fine_version``; None without one); None if there is no such device."""
    (vehicle, vehicle_after), (other, other_after) = _names(ROLLUPS.get((True, interval))), \
        _names(ROLLUPS.get((False, interval)))
    return await (await cur.execute(
        "select d.domain, d.kind, w.done_until as done, w.version, f.done_until as fine_done, "
        "f.version as fine_version from core.devices d "
        "left join cityos_meta.rollup_watermarks w on w.zone = %(tz)s "
        "and w.rollup = case when d.domain = 'vehicle' then %(vehicle)s else %(other)s end "
        "left join cityos_meta.rollup_watermarks f on f.zone = %(tz)s "
        "and f.rollup = case when d.domain = 'vehicle' then %(vehicle_after)s else %(other_after)s end "
        "where d.device_id = %(device)s and d.public and d.revoked_at is null",
        {"tz": zone, "device": device_id, "vehicle": vehicle, "other": other, "vehicle_after": vehicle_after,
         "other_after": other_after})).fetchone()


#: Announced by every statement that changes a series roll-up or the device registry (migration 0020).
SERIES_CHANNEL = "cityos_series_changed"


def series_answers(database_url: str) -> Snapshots:
    """The series answers one API process keeps (started by the app): those read wholly before the roll-ups'
    watermarks, valid until :data:`SERIES_CHANNEL` announces a change, and at most a minute (their max-age)."""
    return Snapshots(database_url, max_age_s=60, channel=SERIES_CHANNEL, name="series-answers",
                     max_entries=1024).start()
