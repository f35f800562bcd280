"""The city boundary layer: read from 国土数値情報 N03 (行政区域) or a derivative, stored in ``gis.boundary``.

A prefecture-wide N03 file holds every municipality; ``code`` picks one (``N03_007``). The parts of
a city (islands, enclaves) are dissolved into one MultiPolygon. Every point loader checks positions
against :func:`current_boundary`.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import psycopg
import shapely
from shapely.geometry import MultiPolygon

from cityos.gis.loaders.points import Boundary
from cityos.gis.loaders.report import LoadReport

CODE_FIELDS = ("N03_007", "code", "CODE", "自治体コード", "KEY_CODE", "N03_007_")
NAME_FIELDS = ("N03_004", "name", "NAME", "名称", "CITY_NAME")


def _field(frame: gpd.GeoDataFrame, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in frame.columns), None)


def read_boundary(path: Path | str, code: str | None = None) -> tuple[gpd.GeoDataFrame, LoadReport]:
    """One row per municipality (code, name, MultiPolygon geometry) and the report."""
    report = LoadReport(Path(path).name, layer="boundary")
    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except Exception as exc:  # any unreadable file is refused as a whole, with the reason
        report.fatal = f"not a readable vector file ({str(exc).splitlines()[0][:200]})"
        return gpd.GeoDataFrame({"code": [], "name": []}, geometry=[], crs="EPSG:4326"), report
    frame = frame.set_crs("EPSG:4326") if frame.crs is None else frame.to_crs("EPSG:4326")
    if frame.crs is None or frame.empty:
        report.fatal = "no features"
    code_field, name_field = _field(frame, CODE_FIELDS), _field(frame, NAME_FIELDS)
    report.rows = len(frame)
    codes = frame[code_field].astype(str).str.strip() if code_field else gpd.pd.Series(["city"] * len(frame))
    if code:
        keep = codes == code
        if not keep.any():
            report.fatal = f"no feature with code {code} (field {code_field or 'none'})"
        frame, codes = frame[keep], codes[keep]
    rows = []
    for value, group in frame.groupby(codes.to_numpy(), sort=True):
        parts = [g for g in group.geometry if g is not None and not g.is_empty]
        geom = shapely.make_valid(shapely.unary_union(parts)) if parts else None
        polys = [g for g in getattr(geom, "geoms", [geom]) if g is not None and g.geom_type == "Polygon"]
        if geom is not None and geom.geom_type == "MultiPolygon":
            polys = list(geom.geoms)
        if not polys:
            report.refuse(0, f"code {value}: no polygon")
            continue
        name = str(group[name_field].iloc[0]).strip() if name_field else str(value)
        rows.append({"code": str(value), "name": name.replace("undefined", ""), "geometry": MultiPolygon(polys)})
    report.loaded = len(rows)
    if not rows and not report.fatal:
        report.fatal = "no polygon features"
    return gpd.GeoDataFrame(rows, columns=["code", "name", "geometry"], geometry="geometry", crs="EPSG:4326"), report


def store_boundary(conn: psycopg.Connection, gdf: gpd.GeoDataFrame, source: str) -> int:
    """Replace the boundary layer (one transaction)."""
    with conn.transaction():
        conn.execute("delete from gis.boundary")
        for row in gdf.itertuples():
            conn.execute("insert into gis.boundary (code, name, source, geom) values (%s, %s, %s, "
                         "st_multi(st_geomfromtext(%s, 4326)))", (row.code, row.name, source, row.geometry.wkt))
    return len(gdf)


def current_boundary(conn: psycopg.Connection, tolerance_m: float) -> Boundary | None:
    """The stored boundary (all rows together), or None when none is loaded."""
    row = conn.execute("select string_agg(name, '・' order by code), st_asbinary(st_union(geom)) "
                       "from gis.boundary").fetchone()
    if row is None or row[1] is None:
        return None
    return Boundary(row[0], shapely.from_wkb(bytes(row[1])), tolerance_m)
