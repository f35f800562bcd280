"""消防水利施設一覧 (fire-water facilities, standard municipal open dataset 09), in every layout seen.

Reads the current and the older standard format, the 全国消火栓マップ layout
(``ID,longitude,latitude,title,type,note,date``, type ``syoukasen``/``suisou``), LinkData exports
(TSV, ``#property`` names, RDF property URIs), misspelt or spaced headers, coordinates swapped on
some rows, blank coordinates, Excel's zero date and 和暦 dates. Every row is accepted, repaired (and
how) or refused (and why, by line); a duplicate ID is refused on the line it repeats; a position
outside the city's boundary (beyond the tolerance) is refused.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd

from cityos.gis.loaders.columns import KIND_VALUES, resolve
from cityos.gis.loaders.dates import DateError, parse_date
from cityos.gis.loaders.points import Boundary, read_point, split_location
from cityos.gis.loaders.report import LoadReport
from cityos.gis.loaders.tables import Table, TableError, read_table

__all__ = ["COLUMNS", "LoadReport", "normalise_fire_water", "read_fire_water"]
#: Columns of ``gis.fire_water`` written by this loader (besides the geometry).
COLUMNS = ["id", "kind", "address", "diameter", "note", "attributes"]


def _empty() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({c: [] for c in COLUMNS}, geometry=[], crs="EPSG:4326")


def normalise_fire_water(table: Table, report: LoadReport,
                         boundary: Boundary | None = None) -> gpd.GeoDataFrame:
    """Standard rows with a point geometry; every problem goes into ``report``."""
    fields = resolve(table.columns, report.notes)
    has_position = ("latitude" in fields and "longitude" in fields) or "location" in fields
    if not has_position:
        report.fatal = ("no column for the position (緯度/経度, latitude/longitude, lat/lng or 位置); "
                        f"columns found: {', '.join(table.columns)}")
        return _empty()
    if "kind" not in fields:
        report.notes.append("no 種別 column: every row is read as 消火栓")
    if not any(cells[table.columns.index(fields["id"])] for _, cells in table.rows) if "id" in fields else True:
        report.notes.append("no IDs in the file: rows are identified by their line number")
    report.rows = len(table.rows)
    records, points, seen, mapped = [], [], {}, {}
    for line, row in table.records():
        def cell(name: str, row: dict[str, str] = row) -> str:
            return row.get(fields.get(name, ""), "")

        lat, lon = (cell("latitude"), cell("longitude")) if "latitude" in fields else split_location(cell("location"))
        point = read_point(lat, lon, line, report, boundary)
        if point is None:
            continue
        ident = cell("id") or f"L{line:05d}"
        if ident in seen:
            report.refuse(line, f"duplicate ID {ident!r} (first on line {seen[ident]})")
            continue
        seen[ident] = line
        raw_kind = cell("kind")
        kind = KIND_VALUES.get(raw_kind.lower(), raw_kind) or ("消火栓" if "kind" not in fields else "不明")
        if raw_kind and kind != raw_kind:
            mapped[raw_kind] = kind
        attributes = {k: v for k, v in row.items() if v}
        if "date" in fields and cell("date"):
            try:
                day = parse_date(cell("date"))
                attributes["date"] = day.isoformat() if day else ""
                if day is None:
                    report.repair(line, f"date {cell('date')!r} is Excel's zero date: stored as unknown")
            except DateError as exc:
                attributes["date"] = ""
                report.repair(line, f"date unreadable, stored as unknown ({exc})")
        note = cell("note")
        if note and _zero_date(note):
            report.repair(line, f"備考 {note!r} is Excel's zero date: cleared")
            note = ""
        records.append({"id": ident, "kind": kind, "address": cell("address"), "diameter": cell("diameter"),
                        "note": note, "attributes": attributes})
        points.append(point)
    if mapped:
        report.notes.append("種別 codes read as standard values: "
                            + ", ".join(f"{k} -> {v}" for k, v in sorted(mapped.items())))
    report.loaded = len(records)
    if not records:
        return _empty()
    return gpd.GeoDataFrame(records, geometry=points, crs="EPSG:4326")


def _zero_date(text: str) -> bool:
    try:
        return text.startswith("1899") and parse_date(text) is None
    except DateError:
        return False


def read_fire_water(path: Path | str, boundary: Boundary | None = None) -> tuple[gpd.GeoDataFrame, LoadReport]:
    """Read a 消防水利施設一覧 file (any layout, UTF-8/BOM/CP932) into standard rows and the report."""
    report = LoadReport(Path(path).name, layer="fire_water")
    try:
        table = read_table(path)
    except (TableError, OSError) as exc:
        report.fatal = str(exc)
        return _empty(), report
    report.encoding = table.encoding
    report.notes.extend(table.notes)
    return normalise_fire_water(table, report, boundary), report
