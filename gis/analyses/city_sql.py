"""Analyses that run entirely in PostGIS (they join hypertables with layers; nothing to ship out).

- snowplow coverage: roads matched to snowplow positions with the blade down;
- energy by district: household consumption of opted-in HEMS homes per district and hour;
- vacant-house candidates: addresses without registered residents and with a near-idle meter.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import dict_row

from cityos.platform.exits import consent_filter

#: A plow position this close to a road (metres, in EPSG:6677) clears that road.
PLOW_MATCH_M = 15.0

SNOWPLOW_COVERAGE = """
    with plowed as (
        select r.road_id, max(p.time) as last_plowed
        from gis.roads r
        join telemetry.vehicle_positions p
          on p.time >= %(since)s and p.blade_down
         and st_dwithin(p.geom, r.geom, %(deg)s)
         and st_dwithin(st_transform(p.geom, 6677), st_transform(r.geom, 6677), %(metres)s)
        join core.devices d on d.device_id = p.device_id and d.kind = 'snowplow'
        group by r.road_id
    )
    select r.road_id, r.name, r.road_class, pl.last_plowed, pl.last_plowed is not null as plowed,
           st_asgeojson(r.geom, 6) as geometry
    from gis.roads r left join plowed pl using (road_id)
    order by r.road_id"""


def snowplow_coverage(conn: psycopg.Connection, since: datetime, metres: float = PLOW_MATCH_M) -> list[dict]:
    """Every road with the time it was last plowed since ``since`` (None: not plowed)."""
    with conn.cursor(row_factory=dict_row) as cur:
        # The degree window is a cheap index filter (1e-4 degrees is about 9-11 m here); the metric test decides.
        return cur.execute(SNOWPLOW_COVERAGE, {"since": since, "metres": metres, "deg": metres / 80_000}).fetchall()


ENERGY_BY_DISTRICT = """
    with homes as (
        select d.device_id, d.district_code from core.devices d
        where d.domain = 'hems' and d.revoked_at is null and d.district_code is not null and {consenting}
    ),
    hourly as (
        select h.district_code, e.device_id, extract(hour from e.time at time zone %(tz)s)::int as hour,
               (e.time >= %(end)s - interval '7 days') as this_week, avg(e.value) as avg_w
        from telemetry.energy_readings e join homes h using (device_id)
        where e.metric = 'power_w' and e.time >= %(end)s - interval '14 days' and e.time < %(end)s
        group by 1, 2, 3, 4
    )
    select district_code, hour,
           count(distinct device_id) filter (where this_week) as homes,
           round(avg(avg_w) filter (where this_week)::numeric, 1)::float8 as avg_w_per_home,
           round(avg(avg_w) filter (where not this_week)::numeric, 1)::float8 as avg_w_per_home_last_week
    from hourly group by district_code, hour order by district_code, hour"""


def energy_by_district(conn: psycopg.Connection, end: datetime, k: int, exit_name: str,
                       timezone: str = "Asia/Tokyo") -> list[dict]:
    """Per district and local hour of day (``timezone``, the city's: ``CITYOS_TIMEZONE``): average consumption
    per home this week and last, week-over-week change; only homes whose owner consented to the purpose
    ``exit_name`` declares (:mod:`cityos.platform.exits`: open data for the API, exports and the CLI); cells
    with fewer than ``k`` homes blanked."""
    query = ENERGY_BY_DISTRICT.format(consenting=consent_filter(exit_name, "d.owner_subject"))
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query, {"end": end, "tz": timezone}).fetchall()
    for row in rows:
        if row["homes"] < k:
            row.update(homes=None, avg_w_per_home=None, avg_w_per_home_last_week=None)
        now, before = row["avg_w_per_home"], row["avg_w_per_home_last_week"]
        row["week_over_week"] = round(float(now) / float(before) - 1, 4) if now is not None and before else None
    return rows


VACANT_CANDIDATES = """
    select a.address_id, a.district_code, d.device_id,
           coalesce(max(e.value) filter (where e.metric = 'import_kwh'), 0)
             - coalesce(min(e.value) filter (where e.metric = 'import_kwh'), 0) as kwh_in_window,
           avg(e.value) filter (where e.metric = 'power_w') as avg_w,
           st_asgeojson(a.geom, 6) as geometry
    from gis.addresses a
    join core.devices d on d.domain = 'hems' and d.revoked_at is null and d.metadata->>'address_id' = a.address_id
    left join telemetry.energy_readings e on e.device_id = d.device_id
         and e.time >= %(end)s - %(days)s * interval '1 day' and e.time < %(end)s
    where not exists (select 1 from registry.residents r where r.address_id = a.address_id
                      and (r.moved_out is null or r.moved_out > %(end)s::date))
    group by a.address_id, a.district_code, d.device_id, a.geom
    having coalesce(max(e.value) filter (where e.metric = 'import_kwh'), 0)
             - coalesce(min(e.value) filter (where e.metric = 'import_kwh'), 0) < %(max_kwh)s
       and coalesce(avg(e.value) filter (where e.metric = 'power_w'), 0) < %(max_w)s
    order by a.address_id"""


def vacant_house_candidates(conn: psycopg.Connection, end: datetime, days: int = 30, max_kwh: float = 3.0,
                            max_w: float = 20.0) -> list[dict]:
    """Addresses with nobody registered and a meter that used under ``max_kwh`` (and ``max_w`` on average)
    over ``days`` days. Only addresses with a meter qualify; staff use only (addresses are personal)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(VACANT_CANDIDATES, {"end": end, "days": days, "max_kwh": max_kwh, "max_w": max_w}
                           ).fetchall()
