"""Files of a dataset, byte-for-byte reproducible (same rows, same bytes), so unchanged data is not re-uploaded.

CSV is UTF-8 with a byte-order mark (Excel on Japanese Windows reads it without mojibake; the
standard datasets allow UTF-8) and CRLF line ends; blanks (suppressed cells) are empty fields.
GeoJSON is RFC 7946 (WGS84, lon/lat) with points from ``lat``/``lon`` or a ``geometry`` column
holding GeoJSON geometries.
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import date, datetime

import pandas as pd

BOM = "\ufeff"


def select_columns(frame: pd.DataFrame, columns: dict[str, str] | None) -> pd.DataFrame:
    """``frame`` with output names: ``columns`` maps output name -> frame column (or a constant '=text')."""
    if not columns:
        return frame
    out = pd.DataFrame(index=frame.index)
    for name, source in columns.items():
        if source.startswith("="):
            out[name] = source[1:]
        elif source not in frame:
            raise KeyError(f"column {source!r} (for {name!r}) is not in the table; has {', '.join(frame.columns)}")
        else:
            out[name] = frame[source]
    return out


def _plain(value):
    """A JSON/CSV-safe scalar: NA -> None, numpy -> Python, times -> ISO 8601."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def to_csv(frame: pd.DataFrame) -> bytes:
    """CSV bytes (UTF-8 with BOM, CRLF), geometry columns left out; integers stay integers, blanks are empty."""
    table = frame.drop(columns=[c for c in ("geometry",) if c in frame])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(table.columns)
    for row in table.itertuples(index=False, name=None):
        writer.writerow(["" if (value := _plain(v)) is None else value for v in row])
    return (BOM + buffer.getvalue()).encode("utf-8")


def _geometry(row: dict) -> dict | None:
    if (geometry := row.pop("geometry", None)) is not None:
        return json.loads(geometry) if isinstance(geometry, str) else geometry
    lat, lon = row.get("lat"), row.get("lon")
    if lat is None or lon is None:
        return None
    return {"type": "Point", "coordinates": [lon, lat]}


def to_geojson(frame: pd.DataFrame, name: str) -> bytes:
    """A GeoJSON FeatureCollection (one feature per row; rows without a location have a null geometry)."""
    features = []
    for row in frame.to_dict(orient="records"):
        properties = {key: _plain(value) for key, value in row.items() if key != "geometry"}
        properties["geometry"] = row.get("geometry")
        geometry = _geometry(properties)
        features.append({"type": "Feature", "geometry": geometry, "properties": properties})
    collection = {"type": "FeatureCollection", "name": name, "features": features}
    return json.dumps(collection, ensure_ascii=False, sort_keys=False, separators=(",", ":")).encode("utf-8")
