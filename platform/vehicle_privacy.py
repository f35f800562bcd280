"""Which public vehicles may be seen where they are now, and which only with a delay.

Snowplows and buses serve the public where they are, so their live positions are open. Other public
city vehicles (patrol cars, other official cars) are shown only as they were :data:`DELAY` ago: a
patrol car's position in real time would tell anyone where the patrol is not. Every open route
that shows a vehicle's position or motion reads it through :data:`PUBLIC_POSITIONS` or
:func:`visible_until`; the OGC layers and the live feeds carry snowplows only.
"""

from __future__ import annotations

from datetime import datetime, timedelta

#: Vehicle kinds shown in real time.
REALTIME_KINDS = ("snowplow", "bus")
#: How old the shown position of any other public vehicle is at least.
DELAY = timedelta(minutes=15)
_DELAY_SQL = f"interval '{int(DELAY.total_seconds())} seconds'"
_REALTIME_SQL = ", ".join(f"'{kind}'" for kind in REALTIME_KINDS)

#: SQL (a subquery) of the position the public may see of each public vehicle: the latest of a
#: snowplow or bus, the latest at least DELAY old of any other (device_id, time, geom, speed_kmh, heading_deg).
PUBLIC_POSITIONS = f"""(
    select p.device_id, p.time, p.geom, p.speed_kmh, p.heading_deg
    from telemetry.latest_positions p join core.devices pd using (device_id)
    where pd.kind in ({_REALTIME_SQL})
    union all
    select pd.device_id, vp.time, vp.geom, vp.speed_kmh, vp.heading_deg
    from core.devices pd cross join lateral (
        select v.time, v.geom, v.speed_kmh, v.heading_deg from telemetry.vehicle_positions v
        where v.device_id = pd.device_id and v.time <= now() - {_DELAY_SQL} order by v.time desc limit 1) vp
    where pd.domain = 'vehicle' and pd.public and pd.kind not in ({_REALTIME_SQL})
)"""

#: SQL condition on a device alias ``d`` and a time column: the row may be shown now.
def visible_sql(device: str = "d", time: str = "v.time") -> str:
    """True for rows of a device the public may see at that time (real-time kinds, or old enough)."""
    return f"({device}.domain <> 'vehicle' or {device}.kind in ({_REALTIME_SQL}) or {time} <= now() - {_DELAY_SQL})"


def visible_until(kind: str | None, now: datetime) -> datetime:
    """The latest time of a vehicle of ``kind`` the public may see."""
    return now if kind in REALTIME_KINDS else now - DELAY
