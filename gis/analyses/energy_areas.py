"""Household consumption per hour of day, shown at the finest area that has at least k opted-in homes.

With the homes a real city has opted in (Aizu: about 500 of 50,000 households), almost no district
(町丁目) reaches k, so a per-district map is grey. Each district is therefore shown at the finest of
three levels whose group has at least k homes: its own district; else the pooled homes of the
town's (町, the district name without its 丁目) districts that are themselves below k; else the pooled
homes of every district left over in the city. The groups partition the homes (no home counts in two
published groups), so no difference of two published values describes fewer than k homes. Every
row says the level and the area it is shown at.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import psycopg

_CHOME = re.compile(r"[0-9０-９一二三四五六七八九十百]+丁目$")

HOME_HOURS = """
    select d.device_id, d.district_code, coalesce(g.name_ja, d.district_code) as district_name,
           extract(hour from e.time at time zone %(tz)s)::int as hour, avg(e.value)::float8 as avg_w
    from core.devices d
    left join gis.districts g on g.code = d.district_code
    join telemetry.energy_readings e on e.device_id = d.device_id
    where d.domain = 'hems' and d.revoked_at is null and d.district_code is not null
      and {consenting}
      and e.metric = 'power_w' and e.time >= %(end)s - interval '7 days' and e.time < %(end)s
      and e.value = e.value  -- not NaN
    group by 1, 2, 3, 4"""


def town_of(district_name: str) -> str:
    """The town (町) of a district (町丁目) name: ``門田町4丁目`` -> ``門田町``; other names stay whole."""
    town = _CHOME.sub("", district_name.strip())
    return town or district_name


@dataclass(frozen=True)
class HomeHour:
    """One home's average power at one hour of day."""

    device_id: str
    district_code: str
    district_name: str
    hour: int
    avg_w: float


def assign_levels(homes_by_district: dict[str, set[str]], towns: dict[str, str], k: int) -> dict[str, tuple[str, str]]:
    """For each district, ``(level, area)``: ``("district", code)``, ``("town", town)``, ``("city", "city")``,
    or ``("suppressed", "")`` when even the city's left-over homes are fewer than ``k``."""
    levels: dict[str, tuple[str, str]] = {}
    left_by_town: dict[str, list[str]] = defaultdict(list)
    for code, homes in homes_by_district.items():
        if len(homes) >= k:
            levels[code] = ("district", code)
        else:
            left_by_town[towns.get(code, code)].append(code)
    rest: list[str] = []
    for town, codes in left_by_town.items():
        if len(set().union(*(homes_by_district[c] for c in codes))) >= k:
            levels.update({c: ("town", town) for c in codes})
        else:
            rest.extend(codes)
    pooled = set().union(*(homes_by_district[c] for c in rest)) if rest else set()
    levels.update({c: ("city", "city") if len(pooled) >= k else ("suppressed", "") for c in rest})
    return levels


def energy_by_area(rows: Iterable[HomeHour], k: int) -> list[dict]:
    """Per district and hour: the level and area it is shown at, the homes of that area and their average
    power per home (None where fewer than ``k`` homes reported at that hour)."""
    rows = list(rows)
    homes_by_district: dict[str, set[str]] = defaultdict(set)
    towns: dict[str, str] = {}
    for r in rows:
        homes_by_district[r.district_code].add(r.device_id)
        towns[r.district_code] = town_of(r.district_name)
    levels = assign_levels(homes_by_district, towns, k)
    cells: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for r in rows:
        level, area = levels[r.district_code]
        cells[(level, area, r.hour)].append(r.avg_w)
    out = []
    for code in sorted(homes_by_district):
        level, area = levels[code]
        for hour in range(24):
            values = cells.get((level, area, hour), []) if level != "suppressed" else []
            shown = len(values) >= k
            out.append({"district_code": code, "hour": hour, "level": level if shown else "suppressed",
                        "area": area if shown else None, "homes": len(values) if shown else None,
                        "avg_w_per_home": round(sum(values) / len(values), 1) if shown else None})
    return out


def energy_by_area_from_db(conn: psycopg.Connection, end: datetime, k: int, exit_name: str,
                           timezone: str = "Asia/Tokyo") -> list[dict]:
    """:func:`energy_by_area` over the last 7 days before ``end``, by local hour (``timezone``), of the homes
    whose owners consented to the purpose ``exit_name`` declares (:mod:`cityos.platform.exits`)."""
    from cityos.platform.exits import consent_filter

    query = HOME_HOURS.format(consenting=consent_filter(exit_name, "d.owner_subject"))
    rows = conn.execute(query, {"end": end, "tz": timezone}).fetchall()
    return energy_by_area((HomeHour(*r) for r in rows), k)
