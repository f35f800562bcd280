"""Loading one file into one layer: read, check every row (against the city boundary too), then
replace the layer in one transaction only when the file is usable, or not at all (``dry_run``).

Whatever the file, the outcome is a :class:`LoadReport`; exceptions from the readers are turned
into a refusal of the whole file with the reason, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import psycopg

from cityos.gis.declarations import Column, Layer, layers
from cityos.gis.loaders.points import Boundary, read_point
from cityos.gis.loaders.report import LoadReport

TABULAR = (".csv", ".tsv", ".txt")


def loadable() -> dict[str, Layer]:
    """The layers a file can be loaded into (``cityos gis load`` choices), from their declarations."""
    return {name: layer for name, layer in layers().items() if layer.loadable}


def read_layer_file(layer: str, path: Path, boundary: Boundary | None = None, source_layer: str | None = None,
                    code: str | None = None) -> tuple[gpd.GeoDataFrame, LoadReport]:
    """Read ``path`` for ``layer`` (any supported format) without touching the database."""
    spec = loadable().get(layer)
    if spec is None:
        report = LoadReport(path.name, layer=layer)
        report.fatal = f"unknown layer {layer!r}; one of {', '.join(loadable())}"
        return gpd.GeoDataFrame(), report
    if spec.reader is not None:
        return spec.reader(path, boundary, source_layer, code)
    return read_generic(spec, path, boundary, source_layer)


def read_generic(spec: Layer, path: Path, boundary: Boundary | None = None,
                 source_layer: str | None = None) -> tuple[gpd.GeoDataFrame, LoadReport]:
    """The generic reader: a point table (CSV/TSV with latitude/longitude) or any OGR vector file."""
    if path.suffix.lower() in TABULAR:
        return _read_point_table(spec, path, boundary)
    return _read_vector(spec, path, boundary, source_layer)


def _read_vector(spec: Layer, path: Path, boundary: Boundary | None,
                 source_layer: str | None) -> tuple[gpd.GeoDataFrame, LoadReport]:
    from cityos.gis.loaders.vectors import MEASURE_CRS, read_vector, repair_geometries

    layer = spec.id
    try:
        gdf = read_vector(path, source_layer)
    except Exception as exc:  # an unreadable file is refused as a whole, with the reason
        report = LoadReport(path.name, layer=layer)
        report.fatal = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        return gpd.GeoDataFrame(), report
    gdf, report = repair_geometries(gdf, path.name, (spec.geometry,) if spec.geometry else ())
    report.layer, report.rows = layer, report.loaded + len(report.refused)
    if layer == "districts" and len(gdf):
        gdf["area_m2"] = gdf.to_crs(MEASURE_CRS).area.round(1)
    gdf = gdf.rename(columns=_renames(spec, list(map(str, gdf.columns))))
    missing = [c.name for c in spec.columns if c.name not in gdf.columns and not c.optional]
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
    for column in spec.column_names:
        if column not in out.columns:
            out[column] = None
    report.loaded = len(out)
    return out, report


def _renames(spec: Layer, columns: list[str]) -> dict[str, str]:
    """File column -> the layer's column, for the names a column declares as its sources (not its own name)."""
    from cityos.gis.loaders.columns import key

    present = {key(c): c for c in columns}
    renames: dict[str, str] = {}
    for column in spec.columns:
        if column.name in columns:
            continue
        found = next((present[key(s)] for s in column.source if key(s) in present), None)
        if found is not None and found not in renames:
            renames[found] = column.name
    return renames


_NUMERIC = {"integer": int, "bigint": int, "double precision": float, "real": float}


def _value(column: Column, cell: str, line: int, report: LoadReport) -> object:
    """A cell as the column's type: numbers read with full-width digits and thousands separators; a blank is
    '' for a required text column and unknown (None) otherwise; an unreadable number is unknown, reported."""
    import unicodedata

    text = unicodedata.normalize("NFKC", cell or "").strip()
    if not text:
        return "" if column.not_null and column.type == "text" else None
    if column.type not in _NUMERIC:
        return cell.strip()
    try:
        number = float(text.replace(",", ""))
        if _NUMERIC[column.type] is not int:
            return number
        if not number.is_integer():
            raise ValueError(text)
        return int(number)
    except (ValueError, OverflowError):
        kind = "a whole number" if _NUMERIC[column.type] is int else "a number"
        report.repair(line, f"{column.name} {cell!r} is not {kind}: stored as unknown")
        return None


def _read_point_table(spec: Layer, path: Path, boundary: Boundary | None) -> tuple[gpd.GeoDataFrame, LoadReport]:
    """A CSV/TSV of points for a vector layer: the layer's own column names, their declared sources or the
    synonyms."""
    from cityos.gis.loaders.columns import resolve
    from cityos.gis.loaders.tables import TableError, read_table

    layer = spec.id
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
    declared = {v: k for k, v in _renames(spec, table.columns).items()}
    source = {c: lower.get(c) or declared.get(c) or fields.get({spec.key: "id"}.get(c, c)) for c in spec.column_names}
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
        records.append({c.name: _value(c, row[source[c.name]] if source[c.name] else "", line, report)
                        for c in spec.columns})
        points.append(point)
    report.loaded = len(records)
    return gpd.GeoDataFrame(records, columns=list(spec.column_names), geometry=points, crs="EPSG:4326"), report


def load_file(conn: psycopg.Connection | None, layer: str, path: Path | str, *, dry_run: bool = False,
              tolerance_m: float = 100.0, source_layer: str | None = None, code: str | None = None,
              reader: Callable | None = None) -> LoadReport:
    """Read, check and (unless ``dry_run`` or the file is refused) replace ``layer`` atomically."""
    from cityos.gis.loaders.boundary import current_boundary
    from cityos.gis.store import record_report, replace_layer

    path = Path(path)
    boundary = None
    spec = loadable().get(layer)
    checked = spec is not None and spec.geometry is not None and layer != "boundary"  # the outline checks points
    if conn is not None and checked:
        boundary = current_boundary(conn, tolerance_m)
    try:
        gdf, report = (reader or read_layer_file)(layer, path, boundary, source_layer, code)
    except Exception as exc:  # never a traceback: the whole file is refused with the reason
        report = LoadReport(path.name, layer=layer)
        report.fatal = f"unreadable ({type(exc).__name__}: {str(exc)[:300]})"
        return report
    report.layer = layer
    report.dry_run = dry_run
    if boundary is None and checked:
        report.notes.append("no city boundary loaded: positions checked against Japan's extent only")
    if report.fatal or dry_run or conn is None:
        return report
    if report.loaded == 0:
        report.fatal = "no row could be loaded; the layer was left as it was"
        return report
    try:
        with conn.transaction():
            if spec.store is not None:
                spec.store(conn, gdf, report.source)
            else:
                replace_layer(conn, spec.table, gdf, [c for c in spec.column_names if c in gdf.columns])
            record_report(conn, layer, report)
    except psycopg.Error as exc:
        report.fatal = f"the database refused the layer, nothing was changed ({str(exc).splitlines()[0]})"
    return report
