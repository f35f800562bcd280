"""消防水利施設一覧 (fire-water facilities, standard municipal open dataset 09).

Accepts the current standard format and the older one, misspelt or spaced headers, coordinates
given longitude-first or swapped on some rows, blank coordinates (refused with a report) and
Excel's zero date. Every refused or repaired row is listed in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
from shapely.geometry import Point

from cityos.gis.loaders.tables import read_table

#: Standard (current) columns and the names they have in the older format or in real files.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "全国地方公共団体コード": ("都道府県コード又は市区町村コード", "地方公共団体コード"),
    "ID": ("NO", "No", "番号"),
    "地方公共団体名": ("市区町村名",),
    "種別": ("種類",),
    "所在地_連結表記": ("住所", "所在地"),
    "建物名等(方書)": ("方書", "建物名等（方書）"),
    "緯度": ("緯度(世界測地系)",),
    "経度": ("経度(世界測地系)",),
    "口径": (),
    "備考": (),
}

# Japan's extent: coordinates outside it on one axis but inside on the other are swapped.
LAT_RANGE = (20.0, 46.0)
LON_RANGE = (122.0, 154.0)


@dataclass
class LoadReport:
    """What a loader did with each row it did not take as it was."""

    source: str
    loaded: int = 0
    repaired: list[dict] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)


def canonical_columns(columns: list[str]) -> dict[str, str]:
    """Map the file's column names to the standard names (spaces and full-width forms ignored)."""
    def key(name: str) -> str:
        return name.replace(" ", "").replace("　", "").replace("（", "(").replace("）", ")")

    lookup = {}
    for standard, aliases in COLUMN_ALIASES.items():
        for name in (standard, *aliases):
            lookup[key(name)] = standard
    return {c: lookup[key(c)] for c in columns if key(c) in lookup}


def _coordinate(value: str) -> float | None:
    try:
        return float(value.replace(" ", "")) if value.strip() else None
    except ValueError:
        return None


def normalise_fire_water(frame: pd.DataFrame, source: str) -> tuple[gpd.GeoDataFrame, LoadReport]:
    """Standard-format rows with a point geometry, and the report of what was repaired or refused."""
    report = LoadReport(source)
    frame = frame.rename(columns=canonical_columns(list(frame.columns)))
    missing = {"種別", "緯度", "経度"} - set(frame.columns)
    if missing:
        raise ValueError(f"{source}: no column for {', '.join(sorted(missing))} (found {', '.join(frame.columns)})")
    records, points = [], []
    for index, row in frame.iterrows():
        line = int(index) + 2  # header is line 1
        lat, lon = _coordinate(row["緯度"]), _coordinate(row["経度"])
        if lat is None or lon is None:
            report.refused.append({"line": line, "reason": "blank or unreadable coordinates"})
            continue
        if not (LAT_RANGE[0] <= lat <= LAT_RANGE[1]) and LAT_RANGE[0] <= lon <= LAT_RANGE[1]:
            lat, lon = lon, lat
            report.repaired.append({"line": line, "repair": "latitude and longitude were swapped"})
        if not (LAT_RANGE[0] <= lat <= LAT_RANGE[1] and LON_RANGE[0] <= lon <= LON_RANGE[1]):
            report.refused.append({"line": line, "reason": f"position {lat}, {lon} is outside Japan"})
            continue
        ident = (row.get("ID") or "").strip() or f"row{line}"
        note = (row.get("備考") or "").replace("1899/12/30", "").strip()
        records.append({"id": ident, "kind": (row.get("種別") or "").strip() or "不明",
                        "address": row.get("所在地_連結表記", "") or "", "diameter": row.get("口径", "") or "",
                        "note": note, "attributes": {k: v for k, v in row.items() if isinstance(v, str) and v}})
        points.append(Point(lon, lat))
    report.loaded = len(records)
    return gpd.GeoDataFrame(records, geometry=points, crs="EPSG:4326"), report


def read_fire_water(path: Path | str) -> tuple[gpd.GeoDataFrame, LoadReport]:
    """Read a 消防水利施設一覧 CSV (any of the usual encodings) into standard rows."""
    frame, encoding = read_table(path)
    gdf, report = normalise_fire_water(frame, f"{Path(path).name} ({encoding})")
    return gdf, report
