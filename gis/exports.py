"""Exports of the public layers and the analysis results to GeoPackage and GeoJSON (for QGIS and others).

Only public data: the OGC collections, and analysis results that are aggregates with small cells
suppressed, joined to their geometries (registry figures: those of the latest reference date,
protected by the same step as the API and CKAN, :mod:`cityos.gis.statistics`). Raw registry rows are
never exportable. The layers declared with ``export=True`` and the declared analyses
(:mod:`cityos.gis.declarations`) are exported without code here; the older analyses have a function each.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import geopandas as gpd
import pandas as pd
import psycopg
from shapely.geometry import Polygon, shape

from cityos.gis.declarations import Analysis, Layer, analyses, layers
from cityos.gis.store import read_layer

FORMATS = {"gpkg": ("GPKG", "application/geopackage+sqlite3"), "geojson": ("GeoJSON", "application/geo+json")}


def _layer(layer: Layer) -> Callable[[psycopg.Connection, int], gpd.GeoDataFrame]:
    def read(conn: psycopg.Connection, k: int) -> gpd.GeoDataFrame:
        return read_layer(conn, f"select {', '.join(layer.properties)}, geom from {layer.table}")

    return read


def _analysis(analysis: Analysis) -> Callable[[psycopg.Connection, int], gpd.GeoDataFrame]:
    def read(conn: psycopg.Connection, k: int) -> gpd.GeoDataFrame:
        from cityos.platform.settings import get_settings

        table = analysis.run(conn, analysis.context(k, get_settings().zone))
        if analysis.geometry == "own":
            return gpd.GeoDataFrame(table, geometry="geometry", crs="EPSG:4326")
        return _districts(conn).merge(table, on="district_code", how="inner")

    return read


def _districts(conn: psycopg.Connection) -> gpd.GeoDataFrame:
    return read_layer(conn, "select code as district_code, name_ja, geom from gis.districts")


def _population(conn: psycopg.Connection, k: int) -> gpd.GeoDataFrame:
    from cityos.gis.analyses.population import population_table
    from cityos.gis.statistics import latest_reference_date, published_statistics

    table = population_table(published_statistics(conn, latest_reference_date(), k))
    return _districts(conn).merge(table, on="district_code", how="inner")


def _bus_coverage(conn: psycopg.Connection, k: int) -> gpd.GeoDataFrame:
    from cityos.gis.analyses.bus_coverage import coverage_table
    from cityos.gis.statistics import latest_reference_date, published_statistics

    table = coverage_table(published_statistics(conn, latest_reference_date(), k))
    return _districts(conn).merge(table, on="district_code", how="inner")


def _hotspots(conn: psycopg.Connection, k: int) -> gpd.GeoDataFrame:
    from cityos.gis.analyses.hotspots import HARSH_BRAKE_MS2, cell_polygon, hotspots
    from cityos.gis.sources import accident_points, vehicle_observations

    table = hotspots(vehicle_observations(conn, 365, HARSH_BRAKE_MS2), accident_points(conn, 365))
    table = table[(table["harsh_brakes"] > 0) | (table["accidents"] > 0)]
    geometry = [Polygon(cell_polygon(c)) for c in table["cell"]]
    return gpd.GeoDataFrame(table.drop(columns=["lat", "lon"]), geometry=geometry, crs="EPSG:4326")


def _snowplow_coverage(conn: psycopg.Connection, k: int) -> gpd.GeoDataFrame:
    import json

    from cityos.gis.analyses.city_sql import snowplow_coverage

    rows = snowplow_coverage(conn, datetime.now(UTC) - timedelta(hours=12))
    geometry = [shape(json.loads(r.pop("geometry"))) for r in rows]
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geometry, crs="EPSG:4326")


def _energy(conn: psycopg.Connection, k: int) -> gpd.GeoDataFrame:
    from cityos.gis.analyses.city_sql import energy_by_district
    from cityos.platform.exits import EXPORT_ENERGY
    from cityos.platform.settings import get_settings

    table = pd.DataFrame(energy_by_district(conn, datetime.now(UTC), k, EXPORT_ENERGY, get_settings().timezone))
    if table.empty:
        table = pd.DataFrame(columns=["district_code", "hour", "homes", "avg_w_per_home"])
    return _districts(conn).merge(table, on="district_code", how="inner")


EXPORTS: dict[str, Callable[[psycopg.Connection, int], gpd.GeoDataFrame]] = {
    **{name: _layer(layer) for name, layer in layers().items() if layer.export},
    **{name: _analysis(analysis) for name, analysis in analyses().items() if analysis.export},
    "population": _population,
    "bus_coverage": _bus_coverage,
    "hotspots": _hotspots,
    "snowplow_coverage": _snowplow_coverage,
    "energy_by_district": _energy,
}


def build(conn: psycopg.Connection, layer: str, k: int) -> gpd.GeoDataFrame:
    """The layer ``layer`` as a GeoDataFrame (WGS84); KeyError names the known layers."""
    if layer not in EXPORTS:
        raise KeyError(f"unknown layer {layer!r}; one of {', '.join(EXPORTS)}")
    gdf = EXPORTS[layer](conn, k)
    for column in gdf.columns:
        if column != "geometry" and gdf[column].dtype == object:  # dates, decimals: text the drivers can write
            gdf[column] = gdf[column].map(lambda v: None if v is None or v is pd.NA else
                                          v if isinstance(v, str | bool | int | float) else str(v))
    return gdf


def write(gdf: gpd.GeoDataFrame, layer: str, fmt: str, path: Path) -> Path:
    """Write ``gdf`` as ``fmt`` (gpkg or geojson) to ``path`` (replaced if present)."""
    driver = FORMATS[fmt][0]
    path.unlink(missing_ok=True)
    gdf.to_file(path, driver=driver, layer=layer, engine="pyogrio")
    return path


def to_bytes(gdf: gpd.GeoDataFrame, layer: str, fmt: str) -> bytes:
    """The file's bytes (GeoPackage needs a real file: written to a temporary folder)."""
    with tempfile.TemporaryDirectory() as folder:
        return write(gdf, layer, fmt, Path(folder) / f"{layer}.{fmt}").read_bytes()
