"""The registry statistics every output publishes: read once per reference date, protected once.

Anonymous and published outputs (the population and bus-coverage routes, their exports, the CLI,
the CKAN population dataset) all take their figures from :func:`published_statistics`, which runs
the one disclosure step (:mod:`cityos.gis.analyses.disclosure`) over the linked tables of a
reference date. Only reference dates are offered to them: the first day of a month (in the city's
time zone, ``CITYOS_TIMEZONE``), up to
the current month; the figures of an arbitrary day would differ from the next day's by single
births and birthdays. Staff with ``registry:read`` get :func:`exact_statistics` for any day.
"""

from __future__ import annotations

import threading
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import psycopg

from cityos.gis.analyses.disclosure import Statistics, protect


def city_zone() -> ZoneInfo:
    """The city's time zone (``CITYOS_TIMEZONE``): its days and month starts are the reference dates."""
    from cityos.platform.settings import get_settings

    return ZoneInfo(get_settings().timezone)


class NotAReferenceDate(ValueError):
    """Anonymous figures exist only for reference dates (the first day of a month, not in the future)."""


def latest_reference_date(now: datetime | None = None) -> date:
    """The first day of the current month in the city's time zone."""
    zone = city_zone()
    return (now or datetime.now(zone)).astimezone(zone).date().replace(day=1)


def check_reference_date(as_of: date | None, now: datetime | None = None) -> date:
    """``as_of`` when it is a published reference date, the latest one when None; else NotAReferenceDate."""
    latest = latest_reference_date(now)
    if as_of is None:
        return latest
    if as_of.day != 1 or as_of > latest:
        raise NotAReferenceDate(
            f"as_of must be a published reference date: the first day of a month (YYYY-MM-01) up to {latest}, "
            f"e.g. {latest} or {(pd.Timestamp(latest) - pd.DateOffset(months=1)).date()}; omit it for {latest}. "
            "Figures for other days are for staff with the registry:read scope (/api/v1/gis/registry/...).")
    return as_of


def people_on(conn: psycopg.Connection, as_of: date) -> pd.DataFrame:
    """One row per resident registered on ``as_of``: district, age, sex, and distance class to the
    nearest bus stop (``no_address`` without an address point)."""
    import geopandas as gpd
    from shapely.geometry import Point

    from cityos.gis.analyses.bus_coverage import place_classes
    from cityos.gis.analyses.population import ages
    from cityos.gis.sources import bus_stops
    from cityos.platform.settings import get_settings

    stops = bus_stops(conn, get_settings().bus_min_departures)  # only stops with useful service count
    rows = conn.execute("""
        select r.district_code, r.birth_date, r.sex, st_x(a.geom), st_y(a.geom) from registry.residents r
        left join gis.addresses a using (address_id)
        where (r.moved_in is null or r.moved_in <= %(day)s) and (r.moved_out is null or r.moved_out > %(day)s)""",
                        {"day": as_of}).fetchall()
    frame = pd.DataFrame(rows, columns=["district_code", "birth_date", "sex", "lon", "lat"])
    points = gpd.GeoDataFrame(frame[["district_code"]], crs="EPSG:4326", geometry=[
        None if pd.isna(lon) else Point(lon, lat) for lon, lat in zip(frame["lon"], frame["lat"], strict=True)])
    return pd.DataFrame({"district_code": frame["district_code"].astype(str),
                         "age": ages(frame["birth_date"], as_of) if len(frame) else pd.Series(dtype=int),
                         "sex": frame["sex"],
                         "place": place_classes(points, stops) if len(frame) else pd.Series(dtype=str)})


def _fingerprint(conn: psycopg.Connection) -> tuple:
    """Changes whenever the registry, the addresses or the bus stops change (a cache key, not a proof)."""
    return conn.execute("""
        select (select count(*) from registry.residents), (select max(updated_at) from registry.residents),
               (select count(*) from gis.addresses),
               (select md5(coalesce(string_agg(stop_id || st_astext(geom) || coalesce(departures_per_weekday::text, ''),
                                               ',' order by stop_id), ''))
                from gis.bus_stops)""").fetchone()


_CACHE: dict[tuple, Statistics] = {}
_LOCK = threading.Lock()


def published_statistics(conn: psycopg.Connection, as_of: date, k: int) -> Statistics:
    """The protected figures of reference date ``as_of`` (computed once per registry state and k)."""
    key = (as_of, k, _fingerprint(conn))
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    stats = protect(people_on(conn, as_of), as_of, k)
    with _LOCK:
        if len(_CACHE) > 32:
            _CACHE.clear()
        _CACHE[key] = stats
    return stats


def exact_statistics(conn: psycopg.Connection, as_of: date) -> Statistics:
    """Unprotected figures of any day (staff with registry:read only; the caller audits)."""
    return protect(people_on(conn, as_of), as_of, 1)
