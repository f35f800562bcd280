"""Public live data shared by the API's feeds and the public MQTT tree: snowplow positions, energy aggregates.

Nothing here is personal: snowplows are city vehicles (public devices in the registry); energy is an
average over the homes of a district whose owners consented to open data, blank below k homes.
"""

from __future__ import annotations

import json

import psycopg

PUBLIC_SNOWPLOWS = ("select device_id from core.devices where public and kind = 'snowplow' "
                    "and revoked_at is null")

ENERGY_NOW = """
    select d.district_code, count(*) as homes, round(avg(v.value)::numeric, 1)::float8 as avg_power_w,
           max(v.time) as latest
    from telemetry.latest_values v join core.devices d using (device_id)
    join core.consents_current c on c.subject_id = d.owner_subject and c.category = 'energy'
         and c.purpose = 'open_data'
    where v.metric = 'power_w' and d.domain = 'hems' and d.revoked_at is null and d.district_code is not null
      and v.time > now() - interval '15 minutes'
    group by rollup (d.district_code) order by d.district_code nulls first"""


def public_snowplows(database_url: str) -> set[str]:
    """Device ids of the city's public snowplows."""
    with psycopg.connect(database_url, connect_timeout=3) as conn:
        return {r[0] for r in conn.execute(PUBLIC_SNOWPLOWS).fetchall()}


def snowplow_snapshot(database_url: str) -> list[dict]:
    """The latest position of every public snowplow."""
    with psycopg.connect(database_url, connect_timeout=3) as conn:
        rows = conn.execute("select device_id, time, st_y(geom), st_x(geom), speed_kmh, heading_deg, blade_down "
                            "from gis.snowplow_positions").fetchall()
    return [{"device_id": r[0], "t": r[1].isoformat(), "lat": r[2], "lon": r[3], "speed_kmh": r[4],
             "heading_deg": r[5], "blade_down": r[6]} for r in rows]


def position_event(device_id: str, payload: bytes) -> dict | None:
    """The public event of a vehicle message (its latest reading), or None if it has no position."""
    try:
        doc = json.loads(payload)
        reading = doc["batch"][-1] if isinstance(doc, dict) and "batch" in doc else doc
        return {"device_id": device_id, "t": reading["t"], "lat": float(reading["lat"]),
                "lon": float(reading["lon"]), "speed_kmh": reading.get("speed_kmh"),
                "heading_deg": reading.get("heading_deg"), "blade_down": reading.get("blade_down")}
    except (ValueError, KeyError, TypeError, IndexError):
        return None  # ingest dead-letters it; the live feeds just skip it


def energy_now(database_url: str, k: int) -> dict:
    """Average power per home now, per district and for the city; fewer than ``k`` homes: blank."""
    with psycopg.connect(database_url, connect_timeout=3) as conn:
        rows = conn.execute(ENERGY_NOW).fetchall()
    out: dict = {"t": None, "city": None, "districts": []}
    for district, homes, avg_w, latest in rows:
        cell = {"homes": homes, "avg_power_w": avg_w} if homes >= k else {"homes": None, "avg_power_w": None}
        if district is None:
            out["city"] = cell
            out["t"] = latest.isoformat() if latest else None
        else:
            out["districts"].append({"district_code": district, **cell})
    return out
