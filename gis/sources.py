"""The analyses' inputs, read from PostGIS (the heavy filtering and joins run in the database)."""

from __future__ import annotations

from datetime import date, timedelta

import geopandas as gpd
import pandas as pd
import psycopg

from cityos.gis.analyses.population import ages
from cityos.gis.store import read_layer


def residents_extract(conn: psycopg.Connection) -> pd.DataFrame:
    """Registry rows needed for aggregates (no names, no addresses)."""
    return pd.DataFrame(conn.execute(
        "select district_code, birth_date, moved_in, moved_out from registry.residents").fetchall(),
        columns=["district_code", "birth_date", "moved_in", "moved_out"])


def residents_at_addresses(conn: psycopg.Connection, as_of: date) -> gpd.GeoDataFrame:
    """One point per registered resident at their address, with district and age."""
    gdf = read_layer(conn, """
        select r.district_code, r.birth_date, a.geom from registry.residents r
        join gis.addresses a using (address_id)
        where (r.moved_in is null or r.moved_in <= %(day)s) and (r.moved_out is null or r.moved_out > %(day)s)""",
                     {"day": as_of})
    gdf["age"] = ages(gdf["birth_date"], as_of) if len(gdf) else pd.Series(dtype=int)
    return gdf.drop(columns=["birth_date"])


def bus_stops(conn: psycopg.Connection, min_departures: int | None = None) -> gpd.GeoDataFrame:
    """Bus stops; with ``min_departures``, only those with useful service: at least that many weekday
    departures (stops loaded without a timetable, whose frequency is unknown, are kept)."""
    if min_departures is None:
        return read_layer(conn, "select stop_id, name, boardings_per_day, geom from gis.bus_stops")
    return read_layer(conn, "select stop_id, name, boardings_per_day, geom from gis.bus_stops "
                            "where departures_per_weekday is null or departures_per_weekday >= %(n)s",
                      {"n": min_departures})


def vehicle_observations(conn: psycopg.Connection, days: int, threshold: float,
                         public_only: bool = False) -> pd.DataFrame:
    """Harsh-brake observations of the last ``days`` (filtered in SQL on the hypertable); ``public_only``: of
    public devices (``core.devices.public``) only."""
    since = pd.Timestamp.now(tz="UTC") - timedelta(days=days)
    public = " and device_id in (select device_id from core.devices where public)" if public_only else ""
    return pd.DataFrame(conn.execute(
        "select device_id, time, st_y(geom), st_x(geom), accel_long from telemetry.vehicle_positions "
        f"where time >= %s and accel_long <= %s{public}", (since, threshold)).fetchall(),
        columns=["device_id", "time", "lat", "lon", "accel_long"])


def accident_points(conn: psycopg.Connection, days: int) -> pd.DataFrame:
    since = pd.Timestamp.now(tz="UTC") - timedelta(days=days)
    return pd.DataFrame(conn.execute(
        "select st_y(geom), st_x(geom) from gis.accidents where occurred_at is null or occurred_at >= %s",
        (since,)).fetchall(), columns=["lat", "lon"])


def population_from_statistics(conn: psycopg.Connection, as_of: date, k: int) -> pd.DataFrame:
    """Per area: the published 地域・年齢別人口 of the latest date on or before ``as_of``, in the analyses'
    age bands, with the same small-count suppression as the registry's table."""
    from cityos.gis.analyses.suppression import suppress_counts
    from cityos.gis.loaders.population_stats import ANALYSIS_BANDS, analysis_bands

    rows = conn.execute("""select area_code, age_bands, total from gis.area_population
                           where as_of = (select max(as_of) from gis.area_population where as_of <= %s)""",
                        (as_of,)).fetchall()
    frame = pd.DataFrame([{"district_code": code, **analysis_bands(bands), "total": total}
                          for code, bands, total in rows], columns=["district_code", *ANALYSIS_BANDS, "total"])
    frame["share_65_plus"] = ((frame["age_65_74"] + frame["age_75_plus"]) / frame["total"]).round(4)
    out = suppress_counts(frame, list(ANALYSIS_BANDS), k, total="total")
    out.loc[out["total"].isna(), "share_65_plus"] = pd.NA
    return out.sort_values("district_code").reset_index(drop=True)
