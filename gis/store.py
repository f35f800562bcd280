"""Writing layers to PostGIS (COPY, one transaction per layer) and reading them back."""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import pandas as pd
import psycopg
from psycopg.types.json import Jsonb

from cityos.gis.loaders.report import LoadReport


def _cell(value: object) -> object:
    """A value for COPY: dicts as JSON, pandas' blanks (NaN, NA, NaT) as null."""
    if isinstance(value, dict):
        return Jsonb(value)
    return None if value is None or value is pd.NA or value is pd.NaT or value != value else value


def replace_layer(conn: psycopg.Connection, table: str, gdf: gpd.GeoDataFrame, columns: Sequence[str]) -> int:
    """Replace every row of ``table`` with ``gdf`` (``columns`` plus its geometry as ``geom``)."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(f"truncate {table}")
        with cur.copy(f"copy {table} ({', '.join(columns)}, geom) from stdin") as copy:
            for values, geom in zip(gdf[list(columns)].itertuples(index=False, name=None), gdf.geometry, strict=True):
                copy.write_row([_cell(v) for v in values] + [f"SRID=4326;{geom.wkt}"])
    return len(gdf)


def record_report(conn: psycopg.Connection, layer: str, report: LoadReport) -> None:
    """Keep what a loader repaired and refused."""
    conn.execute("insert into gis.load_reports (layer, source, loaded, repaired, refused, problems) "
                 "values (%s, %s, %s, %s, %s, %s)",
                 (layer, report.source, report.loaded, len(report.repaired), len(report.refused),
                  Jsonb(report.repaired + report.refused)))


def read_layer(conn: psycopg.Connection, sql: str, params: dict | None = None) -> gpd.GeoDataFrame:
    """A GeoDataFrame from a query whose geometry column is ``geom`` (WGS84)."""
    with conn.cursor() as cur:
        cur.execute(f"select *, st_asbinary(geom) as _wkb from ({sql}) q", params or {})
        names = [d.name for d in cur.description]
        rows = cur.fetchall()
    frame = gpd.GeoDataFrame([dict(zip(names, r, strict=True)) for r in rows], columns=names)
    geometry = gpd.GeoSeries.from_wkb([bytes(w) for w in frame["_wkb"]] if len(frame) else [], crs="EPSG:4326")
    return gpd.GeoDataFrame(frame.drop(columns=["_wkb", "geom"]), geometry=geometry.values, crs="EPSG:4326")
