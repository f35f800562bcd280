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


def vehicle_observations(conn: psycopg.Connection, days: int, threshold: float) -> pd.DataFrame:
    """Harsh-brake observations of the last ``days`` (filtered in SQL on the hypertable)."""
    since = pd.Timestamp.now(tz="UTC") - timedelta(days=days)
    return pd.DataFrame(conn.execute(
        "select device_id, time, st_y(geom), st_x(geom), accel_long from telemetry.vehicle_positions "
        "where time >= %s and accel_long <= %s", (since, threshold)).fetchall(),
        columns=["device_id", "time", "lat", "lon", "accel_long"])


def accident_points(conn: psycopg.Connection, days: int) -> pd.DataFrame:
    since = pd.Timestamp.now(tz="UTC") - timedelta(days=days)
    return pd.DataFrame(conn.execute(
        "select st_y(geom), st_x(geom) from gis.accidents where occurred_at is null or occurred_at >= %s",
        (since,)).fetchall(), columns=["lat", "lon"])
