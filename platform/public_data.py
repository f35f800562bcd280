"""The live energy aggregate shared by the API's feeds and the public MQTT tree (snowplow positions:
:mod:`cityos.platform.public_positions`).

Nothing here is personal: energy is an average over the homes of a district whose owners consented to
open data, blank below k homes.
"""

from __future__ import annotations

from cityos.platform.db.connection import connect
from cityos.platform.exits import consent_filter
from cityos.platform.public_positions import rfc3339_utc

ENERGY_NOW = """
    select d.district_code, count(*) as homes, round(avg(v.value)::numeric, 1)::float8 as avg_power_w,
           max(v.time) as latest
    from telemetry.latest_values v join core.devices d using (device_id)
    where v.metric = 'power_w' and d.domain = 'hems' and d.revoked_at is null and d.district_code is not null
      and v.time > now() - interval '15 minutes' and {consenting}
    group by rollup (d.district_code) order by d.district_code nulls first"""


def energy_now(database_url: str, k: int, exit_name: str) -> dict:
    """Average power per home now, per district and for the city, from the homes that consented to the purpose
    ``exit_name`` declares (:mod:`cityos.platform.exits`); fewer than ``k`` homes: blank."""
    query = ENERGY_NOW.format(consenting=consent_filter(exit_name, "d.owner_subject"))
    with connect(database_url, timeout=3) as conn:
        rows = conn.execute(query).fetchall()
    out: dict = {"t": None, "city": None, "districts": []}
    for district, homes, avg_w, latest in rows:
        cell = {"homes": homes, "avg_power_w": avg_w} if homes >= k else {"homes": None, "avg_power_w": None}
        if district is None:
            out["city"] = cell
            out["t"] = rfc3339_utc(latest) if latest else None
        else:
            out["districts"].append({"district_code": district, **cell})
    return out
