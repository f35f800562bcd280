"""Exports of the public layers and the analysis results to GeoPackage and GeoJSON (for QGIS and others).

Only public data: the OGC collections, and analysis results that are aggregates with small cells
suppressed, joined to their geometries (registry figures: those of the latest reference date,
protected by the same step as the API and CKAN, :mod:`cityos.gis.statistics`). Raw registry rows are
never exportable. The layers declared with ``export=True`` and the declared analyses
(:mod:`cityos.gis.declarations`) are exported without code here, each through its declared steps.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pandas as pd
import psycopg
from shapely.geometry import shape

from cityos.gis.declarations import Analysis, Layer, analyses, layers
from cityos.gis.store import read_layer

FORMATS = {"gpkg": ("GPKG", "application/geopackage+sqlite3"), "geojson": ("GeoJSON", "application/geo+json")}


def _layer(layer: Layer) -> Callable[[psycopg.Connection, int], gpd.GeoDataFrame]:
    def read(conn: psycopg.Connection, k: int) -> gpd.GeoDataFrame:
        return read_layer(conn, f"select {', '.join(layer.properties)}, geom from {layer.table}")

    return read


def _analysis(analysis: Analysis) -> Callable[[psycopg.Connection, int], gpd.GeoDataFrame]:
    def read(conn: psycopg.Connection, k: int) -> gpd.GeoDataFrame:
        from cityos.gis.statistics import latest_reference_date
        from cityos.platform.settings import get_settings

        day = latest_reference_date() if analysis.reference_date else None
        ctx = analysis.context(k, get_settings().zone, channel="export", as_of=day)
        result = analysis.view("export", analysis.run(conn, ctx), ctx)
        table = pd.DataFrame(result) if isinstance(result, list) else result
        if table.empty and analysis.columns:
            table = pd.DataFrame(columns=list(analysis.columns))
        if analysis.geometry == "own":
            geometry = [shape(g) if isinstance(g, dict) else g for g in table["geometry"]]
            return gpd.GeoDataFrame(table.drop(columns=["geometry"]), geometry=geometry, crs="EPSG:4326")
        return _districts(conn).merge(table, on="district_code", how="inner")

    return read


def _districts(conn: psycopg.Connection) -> gpd.GeoDataFrame:
    return read_layer(conn, "select code as district_code, name_ja, geom from gis.districts")


EXPORTS: dict[str, Callable[[psycopg.Connection, int], gpd.GeoDataFrame]] = {
    **{name: _layer(layer) for name, layer in layers().items() if layer.export},
    **{name: _analysis(analysis) for name, analysis in analyses().items() if analysis.export},
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
