"""Vector layers from GeoPackage, GeoJSON, Shapefile or CSV with coordinates: reprojected to
WGS84, invalid geometries repaired (``make_valid``) or refused, with a report."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import shapely

from cityos.gis.loaders.report import LoadReport

STORE_CRS = "EPSG:4326"
#: Japan Plane Rectangular CS zone IX (Fukushima, Aizuwakamatsu): where the analyses measure.
MEASURE_CRS = "EPSG:6677"


def read_vector(path: Path | str, layer: str | None = None) -> gpd.GeoDataFrame:
    """Read any OGR-readable vector file; a file without a CRS is refused (guessing would be wrong)."""
    gdf = gpd.read_file(path, layer=layer, engine="pyogrio")
    if gdf.crs is None:
        raise ValueError(f"{path}: the file has no coordinate reference system")
    return gdf.to_crs(STORE_CRS)


def repair_geometries(gdf: gpd.GeoDataFrame, source: str,
                      kinds: tuple[str, ...]) -> tuple[gpd.GeoDataFrame, LoadReport]:
    """Repair invalid geometries; refuse empty ones and those whose type is not in ``kinds``."""
    report = LoadReport(source)
    keep = []
    geoms = []
    for i, geom in enumerate(gdf.geometry):
        if geom is None or geom.is_empty:
            report.refused.append({"feature": i + 1, "reason": "empty geometry"})
            continue
        if not geom.is_valid:
            reason = shapely.is_valid_reason(geom)
            geom = shapely.make_valid(geom)
            if geom.geom_type == "GeometryCollection":
                parts = [g for g in geom.geoms if g.geom_type.replace("Multi", "") in
                         {k.replace("Multi", "") for k in kinds}]
                geom = shapely.unary_union(parts) if parts else geom
            report.repaired.append({"feature": i + 1, "repair": f"made valid ({reason})"})
        if kinds and geom.geom_type not in kinds:
            promoted = {"Polygon": "MultiPolygon", "LineString": "MultiLineString"}.get(geom.geom_type)
            if promoted in kinds:
                geom = getattr(shapely, promoted)([geom])
            else:
                report.refused.append({"feature": i + 1, "reason": f"{geom.geom_type} where {'/'.join(kinds)} belongs"})
                continue
        keep.append(i)
        geoms.append(geom)
    out = gdf.iloc[keep].copy()
    out = out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=gdf.crs))
    report.loaded = len(out)
    return out, report
