"""Loading one file into one layer: read, check every row (against the city boundary too), then
replace the layer in one transaction only when the file is usable, or not at all (``dry_run``).

Whatever the file, the outcome is a :class:`LoadReport`; exceptions from the readers are turned
into a refusal of the whole file with the reason, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import psycopg

from cityos.gis.loaders.points import Boundary, read_point
from cityos.gis.loaders.report import LoadReport


@dataclass(frozen=True)
class Layer:
    """Where a layer is stored and which geometry types it takes."""

    table: str
    columns: tuple[str, ...]
    kinds: tuple[str, ...]
    key: str


LAYERS: dict[str, Layer] = {
    "districts": Layer("gis.districts", ("code", "name_ja", "name_en", "area_m2"), ("MultiPolygon",), "code"),
    "roads": Layer("gis.roads", ("road_id", "name", "road_class"), ("LineString",), "road_id"),
    "facilities": Layer("gis.facilities", ("id", "name", "kind", "district_code"), ("Point",), "id"),
    "bus_stops": Layer("gis.bus_stops", ("stop_id", "name", "boardings_per_day", "departures_per_weekday"),
                       ("Point",), "stop_id"),
    "accidents": Layer("gis.accidents", ("id", "occurred_at", "severity"), ("Point",), "id"),
    "addresses": Layer("gis.addresses", ("address_id", "district_code"), ("Point",), "address_id"),
    "fire_water": Layer("gis.fire_water", ("id", "kind", "address", "diameter", "note", "attributes"), ("Point",),
                        "id"),
}
TABULAR = (".csv", ".tsv", ".txt")


def _is_gtfs(path: Path) -> bool:
    import zipfile

    if path.is_dir():
        return (path / "stops.txt").exists()
    return path.name == "stops.txt" or (path.suffix == ".zip" and zipfile.is_zipfile(path))


def read_layer_file(layer: str, path: Path, boundary: Boundary | None = None, source_layer: str | None = None,
                    code: str | None = None) -> tuple[gpd.GeoDataFrame, LoadReport]:
    """Read ``path`` for ``layer`` (any supported format) without touching the database."""
    if layer == "boundary":
        from cityos.gis.loaders.boundary import read_boundary

        return read_boundary(path, code)
    if layer == "population":
        from cityos.gis.loaders.population_stats import read_population

        return read_population(path)
    if layer == "fire_water":
        from cityos.gis.loaders.fire_water import read_fire_water

        return read_fire_water(path, boundary)
    if layer == "bus_stops" and _is_gtfs(path):
        from cityos.gis.loaders.gtfs import read_gtfs

        return read_gtfs(path, boundary)
    if layer not in LAYERS:
        report = LoadReport(path.name, layer=layer)
        report.fatal = f"unknown layer {layer!r}; one of boundary, population, {', '.join(LAYERS)}"
        return gpd.GeoDataFrame(), report
    if path.suffix.lower() in TABULAR:
        return _read_point_table(layer, path, boundary)
    return _read_vector(layer, path, boundary, source_layer)


def _read_vector(layer: str, path: Path, boundary: Boundary | None,
                 source_layer: str | None) -> tuple[gpd.GeoDataFrame, LoadReport]:
    from cityos.gis.loaders.vectors import MEASURE_CRS, read_vector, repair_geometries

    spec = LAYERS[layer]
    try:
        gdf = read_vector(path, source_layer)
    except Exception as exc:  # an unreadable file is refused as a whole, with the reason
        report = LoadReport(path.name, layer=layer)
        report.fatal = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        return gpd.GeoDataFrame(), report
    gdf, report = repair_geometries(gdf, path.name, spec.kinds)
    report.layer, report.rows = layer, report.loaded + len(report.refused)
    if layer == "districts" and len(gdf):
        gdf["area_m2"] = gdf.to_crs(MEASURE_CRS).area.round(1)
    missing = [c for c in spec.columns if c not in gdf.columns and c not in ("departures_per_weekday",
                                                                             "boardings_per_day")]
    if missing:
        report.fatal = f"missing columns {', '.join(missing)} (found {', '.join(map(str, gdf.columns))})"
        return gdf, report
    keep = []
    seen: dict[str, int] = {}
    for i, (key, geom) in enumerate(zip(gdf[spec.key].astype(str), gdf.geometry, strict=True)):
        if key in seen:
            report.refuse(i + 1, f"duplicate {spec.key} {key!r} (first in feature {seen[key]})")
            continue
        if boundary is not None and geom.geom_type == "Point" and read_point(geom.y, geom.x, i + 1, report,
                                                                             boundary) is None:
            continue
        seen[key] = i + 1
        keep.append(i)
    out = gdf.iloc[keep].copy()
    for column in spec.columns:
        if column not in out.columns:
            out[column] = None
    report.loaded = len(out)
    return out, report


def _read_point_table(layer: str, path: Path, boundary: Boundary | None) -> tuple[gpd.GeoDataFrame, LoadReport]:
    """A CSV/TSV of points for a vector layer: the layer's own column names or the synonyms."""
    from cityos.gis.loaders.columns import resolve
    from cityos.gis.loaders.tables import TableError, read_table

    spec = LAYERS[layer]
    report = LoadReport(path.name, layer=layer)
    try:
        table = read_table(path)
    except (TableError, OSError) as exc:
        report.fatal = str(exc)
        return gpd.GeoDataFrame(), report
    report.encoding, report.rows = table.encoding, len(table.rows)
    report.notes.extend(table.notes)
    fields = resolve(table.columns, report.notes)
    lower = {c.lower(): c for c in table.columns}
    source = {c: lower.get(c) or fields.get({spec.key: "id"}.get(c, c)) for c in spec.columns}
    if "latitude" not in fields or "longitude" not in fields or not source[spec.key]:
        report.fatal = (f"needs {spec.key} (or ID) and latitude/longitude columns; found {', '.join(table.columns)}")
        return gpd.GeoDataFrame(), report
    records, points, seen = [], [], {}
    for line, row in table.records():
        point = read_point(row[fields["latitude"]], row[fields["longitude"]], line, report, boundary)
        if point is None:
            continue
        key = row[source[spec.key]]
        if not key or key in seen:
            report.refuse(line, f"duplicate {spec.key} {key!r} (first on line {seen[key]})" if key else
                          f"blank {spec.key}")
            continue
        seen[key] = line
        records.append({c: (row[source[c]] or None) if source[c] else None for c in spec.columns})
        points.append(point)
    report.loaded = len(records)
    return gpd.GeoDataFrame(records, columns=list(spec.columns), geometry=points, crs="EPSG:4326"), report


def load_file(conn: psycopg.Connection | None, layer: str, path: Path | str, *, dry_run: bool = False,
              tolerance_m: float = 100.0, source_layer: str | None = None, code: str | None = None,
              reader: Callable | None = None) -> LoadReport:
    """Read, check and (unless ``dry_run`` or the file is refused) replace ``layer`` atomically."""
    from cityos.gis.loaders.boundary import current_boundary, store_boundary
    from cityos.gis.store import record_report, replace_layer

    path = Path(path)
    boundary = None
    if conn is not None and layer not in ("boundary", "population"):
        boundary = current_boundary(conn, tolerance_m)
    try:
        gdf, report = (reader or read_layer_file)(layer, path, boundary, source_layer, code)
    except Exception as exc:  # never a traceback: the whole file is refused with the reason
        report = LoadReport(path.name, layer=layer)
        report.fatal = f"unreadable ({type(exc).__name__}: {str(exc)[:300]})"
        return report
    report.layer = layer
    report.dry_run = dry_run
    if boundary is None and layer not in ("boundary", "population"):
        report.notes.append("no city boundary loaded: positions checked against Japan's extent only")
    if report.fatal or dry_run or conn is None:
        return report
    if report.loaded == 0:
        report.fatal = "no row could be loaded; the layer was left as it was"
        return report
    try:
        with conn.transaction():
            if layer == "boundary":
                store_boundary(conn, gdf, report.source)
            elif layer == "population":
                from cityos.gis.loaders.population_stats import store_population

                store_population(conn, gdf)
            else:
                replace_layer(conn, LAYERS[layer].table, gdf, list(LAYERS[layer].columns))
            record_report(conn, layer, report)
    except psycopg.Error as exc:
        report.fatal = f"the database refused the layer, nothing was changed ({str(exc).splitlines()[0]})"
    return report
