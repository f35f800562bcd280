"""地域・年齢別人口 (standard municipal open dataset 11): population per 町丁目 from published statistics.

For a city without a registry extract. Reads the standard and older formats (5-year bands per sex,
``0-4歳の男性`` ... ``100歳以上の女性``, ``年齢不詳``, or single years ``0歳`` ...), also in LinkData
form (UTF-8 with BOM, ``#`` metadata rows, names only in ``#property``, ``M/D/YYYY`` dates, a quoted
``"lat,lon"`` location cell), through the shared reader. A row without an area is the city total.
Counts that are not whole numbers are refused by line; a total that disagrees with 男性 + 女性 is
kept and noted.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import psycopg
from psycopg.types.json import Jsonb

from cityos.gis.loaders.columns import resolve
from cityos.gis.loaders.dates import DateError, parse_date
from cityos.gis.loaders.report import LoadReport
from cityos.gis.loaders.tables import TableError, read_table

_BAND = re.compile(r"^(?P<lo>\d+)(?:-(?P<hi>\d+))?歳(?P<plus>以上)?(?:の)?(?P<sex>男性|女性|男|女|総数|計)?$")
_UNKNOWN = re.compile(r"^年齢不詳(?:の)?(男性|女性|男|女|総数|計)?$")
#: Bands of the analyses (population by district), from 5-year bands.
ANALYSIS_BANDS = {"age_0_14": (0, 14), "age_15_64": (15, 64), "age_65_74": (65, 74), "age_75_plus": (75, 200)}


def _count(text: str) -> int | None:
    text = text.replace(",", "").strip()
    if text in ("", "-", "−", "…", "x", "X", "*"):
        return None
    if not re.fullmatch(r"\d+", text):
        raise ValueError(text)
    return int(text)


def _band_columns(columns: list[str]) -> dict[str, str]:
    """column -> band label ("0-4", "100+", "unknown") for the age columns."""
    bands = {}
    for column in columns:
        name = column.replace(" ", "")
        if m := _BAND.match(name):
            bands[column] = f"{m['lo']}+" if m["plus"] else (f"{m['lo']}-{m['hi']}" if m["hi"] else m["lo"])
        elif _UNKNOWN.match(name):
            bands[column] = "unknown"
    return bands


def read_population(path: Path | str) -> tuple[pd.DataFrame, LoadReport]:
    """One row per area and date (counts summed over sex per band), and the per-row report."""
    report = LoadReport(Path(path).name, layer="population")
    columns = ["area_code", "area_name", "as_of", "total", "male", "female", "households", "age_bands"]
    try:
        table = read_table(path)
    except (TableError, OSError) as exc:
        report.fatal = str(exc)
        return pd.DataFrame(columns=columns), report
    report.encoding, report.rows = table.encoding, len(table.rows)
    report.notes.extend(table.notes)
    fields = resolve(table.columns, report.notes)
    bands = _band_columns(table.columns)
    if "date" not in fields or ("total" not in fields and not bands):
        report.fatal = f"needs 調査年月日 and 総人口 or age columns; found {', '.join(table.columns)}"
        return pd.DataFrame(columns=columns), report
    rows, seen = [], {}
    for line, row in table.records():
        try:
            as_of = parse_date(row[fields["date"]])
        except DateError as exc:
            report.refuse(line, f"調査年月日 {exc}")
            continue
        if as_of is None:
            report.refuse(line, "blank 調査年月日")
            continue
        name = row.get(fields.get("area_name", ""), "")
        code = row.get(fields.get("area_code", ""), "") or name or row.get(fields.get("lg_code", ""), "") or "city"
        try:
            counts = {k: _count(row.get(fields[k], "")) if k in fields else None
                      for k in ("total", "male", "female", "households")}
            by_band: dict[str, int] = {}
            for column, band in bands.items():
                value = _count(row[column])
                if value is not None:
                    by_band[band] = by_band.get(band, 0) + value
        except ValueError as exc:
            report.refuse(line, f"count {str(exc)!r} is not a whole number")
            continue
        if (code, as_of) in seen:
            report.refuse(line, f"duplicate area {code} on {as_of} (first on line {seen[code, as_of]})")
            continue
        seen[code, as_of] = line
        if counts["total"] is None and by_band:
            counts["total"] = sum(by_band.values())
            report.repair(line, "総人口 blank: the sum of the age bands")
        if None not in (counts["total"], counts["male"], counts["female"]) and \
                counts["male"] + counts["female"] != counts["total"]:
            report.notes.append(f"line {line}: 男性 + 女性 = {counts['male'] + counts['female']} but 総人口 = "
                                f"{counts['total']}")
        rows.append({"area_code": code, "area_name": name, "as_of": as_of, **counts, "age_bands": by_band})
    report.loaded = len(rows)
    return pd.DataFrame(rows, columns=columns), report


def store_population(conn: psycopg.Connection, frame: pd.DataFrame) -> int:
    """Replace the published population (one transaction)."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("delete from gis.area_population")
        for row in frame.to_dict(orient="records"):
            cur.execute("insert into gis.area_population (area_code, area_name, as_of, total, male, female, "
                        "households, age_bands) values (%s, %s, %s, %s, %s, %s, %s, %s)",
                        (row["area_code"], row["area_name"], row["as_of"], row["total"], row["male"], row["female"],
                         row["households"], Jsonb(row["age_bands"])))
    return len(frame)


def analysis_bands(age_bands: dict[str, int]) -> dict[str, int]:
    """5-year bands summed into the analyses' bands (0-14, 15-64, 65-74, 75+)."""
    out = dict.fromkeys(ANALYSIS_BANDS, 0)
    for band, count in age_bands.items():
        if band == "unknown":
            continue
        lo = int(band.rstrip("+").split("-")[0])
        for name, (a, b) in ANALYSIS_BANDS.items():
            if a <= lo <= b:
                out[name] += count
    return out
