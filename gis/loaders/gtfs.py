"""GTFS-JP feeds (標準的なバス情報フォーマット) as bus stops with their service frequency.

A feed is a zip, a folder, or its ``stops.txt`` (the other files are read beside it). Every file
goes through the shared tabular reader, so quoted numbers, stray spaces, BOMs, CP932 and full-width
digits are read. Stops are the boarding points (``location_type`` 0 or blank); parent stations
(``location_type=1``) are not stops and are reported as skipped, as are entrances and nodes.
``departures_per_weekday`` counts the departures (stop_times rows that allow boarding) of trips
whose service runs on a typical weekday (a Wednesday in ``calendar.txt``); a stop with none gets 0.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path

import geopandas as gpd

from cityos.gis.loaders.points import Boundary, read_point
from cityos.gis.loaders.report import LoadReport
from cityos.gis.loaders.tables import Table, TableError, read_table

COLUMNS = ["stop_id", "name", "boardings_per_day", "departures_per_weekday"]


def is_gtfs(path: Path) -> bool:
    """Whether ``path`` is a GTFS feed (a folder with stops.txt, stops.txt itself, or a zip)."""
    if path.is_dir():
        return (path / "stops.txt").exists()
    return path.name == "stops.txt" or (path.suffix == ".zip" and zipfile.is_zipfile(path))


class FeedError(ValueError):
    """The feed lacks a file or column it cannot do without."""


def _files(path: Path) -> dict[str, bytes]:
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return {Path(n).name: archive.read(n) for n in archive.namelist()
                    if n.endswith(".txt") and not n.startswith("__MACOSX")}
    folder = path if path.is_dir() else path.parent
    return {p.name: p.read_bytes() for p in folder.glob("*.txt")}


def _table(files: dict[str, bytes], name: str, required: bool = True) -> Table | None:
    if name not in files:
        if required:
            raise FeedError(f"the feed has no {name}")
        return None
    try:
        table = read_table(files[name])
    except TableError as exc:
        raise FeedError(f"{name}: {exc}") from None
    table.columns = [c.lower() for c in table.columns]
    return table


def _weekday_services(calendar: Table | None) -> set[str] | None:
    """service_ids running on a Wednesday, or None when the feed has no calendar.txt (count all trips)."""
    if calendar is None or "wednesday" not in calendar.columns:
        return None
    return {row["service_id"] for _, row in calendar.records() if row.get("wednesday") == "1"}


def departures(files: dict[str, bytes], report: LoadReport) -> Counter:
    """Departures per stop_id on a typical weekday."""
    trips, stop_times = _table(files, "trips.txt"), _table(files, "stop_times.txt")
    services = _weekday_services(_table(files, "calendar.txt", required=False))
    if services is None:
        report.notes.append("no calendar.txt: every trip counted as running on weekdays")
    weekday_trips = {row["trip_id"] for _, row in trips.records()
                     if services is None or row.get("service_id") in services}
    counts: Counter = Counter()
    for _, row in stop_times.records():
        if row.get("trip_id") in weekday_trips and row.get("pickup_type", "") != "1":
            counts[row.get("stop_id", "")] += 1
    report.notes.append(f"{len(weekday_trips)} weekday trips of {len(trips.rows)}")
    return counts


def read_gtfs(path: Path | str, boundary: Boundary | None = None) -> tuple[gpd.GeoDataFrame, LoadReport]:
    """The feed's stops with departures per weekday, and the per-row report of stops.txt."""
    path = Path(path)
    report = LoadReport(f"{path.name} (GTFS-JP)", layer="bus_stops")
    empty = gpd.GeoDataFrame({c: [] for c in COLUMNS}, geometry=[], crs="EPSG:4326")
    try:
        files = _files(path)
        stops = _table(files, "stops.txt")
        missing = {"stop_id", "stop_lat", "stop_lon"} - set(stops.columns)
        if missing:
            raise FeedError(f"stops.txt has no {', '.join(sorted(missing))}")
        counts = departures(files, report)
    except (FeedError, OSError, zipfile.BadZipFile) as exc:
        report.fatal = str(exc)
        return empty, report
    report.encoding = stops.encoding
    report.rows = len(stops.rows)
    records, points, seen = [], [], {}
    for line, row in stops.records():
        kind = row.get("location_type", "") or "0"
        if kind != "0":
            label = {"1": "parent station", "2": "entrance", "3": "generic node", "4": "boarding area"}.get(kind, kind)
            report.refuse(line, f"not a boarding stop: location_type={kind} ({label})")
            continue
        point = read_point(row["stop_lat"], row["stop_lon"], line, report, boundary)
        if point is None:
            continue
        stop_id = row["stop_id"]
        if not stop_id:
            report.refuse(line, "blank stop_id")
            continue
        if stop_id in seen:
            report.refuse(line, f"duplicate stop_id {stop_id!r} (first on line {seen[stop_id]})")
            continue
        seen[stop_id] = line
        records.append({"stop_id": stop_id, "name": row.get("stop_name", "") or stop_id, "boardings_per_day": None,
                        "departures_per_weekday": counts.get(stop_id, 0)})
        points.append(point)
    report.loaded = len(records)
    unused = sum(1 for r in records if r["departures_per_weekday"] == 0)
    if unused:
        report.notes.append(f"{unused} stops have no weekday departure")
    if not records:
        return empty, report
    return gpd.GeoDataFrame(records, geometry=points, crs="EPSG:4326"), report
