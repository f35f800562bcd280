"""Reading the per-device ledger: did everything arrive, per device and day, and which devices need a look.

Ingest writes ``core.device_ledger`` in the same transaction as the rows it counts (see
:mod:`cityos.ingest.writer`), one row per device and arrival hour (UTC). Reports sum the hours into
days, UTC or the city's local days (``CITYOS_TIMEZONE``; exact for zones whole hours from UTC). For
each delivery of a message: ``messages`` = accepted + refused; for the readings of accepted messages:
readings sent = ``stored`` + ``duplicates`` (re-deliveries the tables' keys absorbed).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.rows import dict_row

#: How often a device of each domain is expected to report when ``core.devices.expected_interval`` is unset.
EXPECTED: dict[str, timedelta] = {
    "hems": timedelta(minutes=10),   # meters report every 30-60 s
    "env": timedelta(hours=1),       # soil and weather sensors report every few minutes to an hour
    "health": timedelta(hours=6),    # wearables sync when near their phone or gateway
    "vehicle": timedelta(days=1),    # city vehicles are parked overnight and on holidays
}

STATS = """
    with hours as (
        select (hour at time zone %(tz)s)::date as day, messages, stored, duplicates, late, refused, newest
        from core.device_ledger where device_id = %(device)s and hour >= %(since)s),
    reasons as (
        select day, jsonb_object_agg(key, total) as refused from (
            select day, key, sum(value::bigint) as total from hours, jsonb_each_text(refused) group by 1, 2) k
        group by day)
    select h.day, sum(messages)::bigint as messages, sum(stored)::bigint as stored,
           sum(duplicates)::bigint as duplicates, sum(late)::bigint as late,
           coalesce(r.refused, '{}'::jsonb) as refused, max(newest) as newest
    from hours h left join reasons r using (day)
    group by h.day, r.refused order by 1"""


def day_start(now: datetime, days: int, tz: str) -> datetime:
    """The first instant of the last ``days`` days (today included) in the zone ``tz``."""
    from zoneinfo import ZoneInfo

    local = now.astimezone(ZoneInfo(tz)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (local - timedelta(days=days - 1)).astimezone(UTC)


def device_stats(conn: psycopg.Connection, device_id: str, *, days: int = 7, tz: str = "UTC",
                 now: datetime | None = None) -> list[dict]:
    """The device's ledger per day (in the zone ``tz``) for the last ``days`` days, oldest first."""
    since = day_start(now or datetime.now(UTC), days, tz)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(STATS, {"device": device_id, "since": since, "tz": tz}).fetchall()
    for row in rows:
        row["refused_total"] = sum(row["refused"].values())
    return rows


SILENT = """
    with heard as (
        select device_id, max(newest) as last_observation, sum(messages)::bigint as messages
        from core.device_ledger where hour >= %(since)s group by 1)
    select d.device_id, d.domain, d.kind, d.created_at,
           coalesce(d.expected_interval, (%(defaults)s::jsonb ->> d.domain)::interval) as expected_interval,
           h.last_observation, coalesce(h.messages, 0) as messages
    from core.devices d left join heard h using (device_id)
    where d.revoked_at is null
    order by d.device_id"""

REFUSALS = """
    select device_id, jsonb_object_agg(reason, count) as refused, sum(count)::bigint as refused_total,
           exists (select 1 from core.devices d where d.device_id = r.device_id) as registered
    from (select device_id, key as reason, sum(value::bigint)::bigint as count
          from core.device_ledger, jsonb_each_text(refused) where hour >= %(since)s group by 1, 2) r
    group by device_id order by refused_total desc, device_id"""


def fleet(conn: psycopg.Connection, *, days: int = 7, now: datetime | None = None) -> dict[str, list[dict]]:
    """Active devices silent for longer than their expected interval (``silent``; a device not heard within
    ``days`` counts from its registration or the start of those days), and every device id, registered or not
    (``''``: a topic naming no device), with refused messages in the last ``days`` days (``refusals``)."""
    from psycopg.types.json import Jsonb

    now = now or datetime.now(UTC)
    since = now - timedelta(days=days)
    defaults = {domain: f"{int(interval.total_seconds())} seconds" for domain, interval in EXPECTED.items()}
    with conn.cursor(row_factory=dict_row) as cur:
        devices = cur.execute(SILENT, {"since": since, "defaults": Jsonb(defaults)}).fetchall()
        refusals = cur.execute(REFUSALS, {"since": since}).fetchall()
    silent = []
    for d in devices:
        d["silent_for"] = now - (d["last_observation"] or max(d["created_at"], since))
        if d["silent_for"] > d["expected_interval"]:
            silent.append(d)
    return {"silent": silent, "refusals": refusals}


def as_json(row: dict) -> dict:
    """A ledger or fleet row with intervals in seconds and times in ISO 8601."""
    out: dict[str, object] = {}
    for key, value in row.items():
        if isinstance(value, timedelta):
            out[key + "_s" if not key.endswith("_s") else key] = value.total_seconds()
        elif isinstance(value, datetime):
            out[key] = value.isoformat()
        else:
            out[key] = value if not hasattr(value, "isoformat") else value.isoformat()
    return out
