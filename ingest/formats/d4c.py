"""Stream ``d4c``: official-car records in the format DATA for CITIZEN (Aizuwakamatsu) publishes.

A message is one record or a JSON array of records (at most 10,000), each with the published fields:

| field | meaning | stored as |
|---|---|---|
| ``car_name`` | the car's name in the open data (optional) | not stored: the topic's device is the car |
| ``measurement_date`` | ``2014/12/01`` or ``2014-12-01`` (month and day may lack the leading 0) | time |
| ``measurement_hour`` | ``10:23:45`` (optionally with a fraction ``.5``) | time |
| ``measurement_datetime`` | portal JSON naming: ``2014-12-01 10:23:45`` (optional fraction, UTC offset) | time |
| ``measurement_ms`` | milliseconds (0-999) added to a time without a fraction (portal JSON) | time |
| ``gps_error_meter`` | GPS error, m | ``gps_error_m`` |
| ``latitude``, ``longitude`` | WGS84 degrees | ``lat``, ``lon`` |
| ``accel_x_transverse`` | transverse acceleration | ``accel_trans`` (m/s²) |
| ``accel_y_longitudinal`` | longitudinal acceleration | ``accel_long`` (m/s²) |

- Date and hour are Japan Standard Time (UTC+09:00, no daylight saving).
- Numbers may be JSON numbers or numeric strings (the portal's CSV-derived JSON has both; full-width
  digits are read). ``""`` or ``null`` is "not measured"; blank coordinates are ``void_fix``.
- Accelerations: the published records give no unit. cityos assumes multiples of standard gravity
  (G, 9.80665 m/s²), as car G-sensor loggers commonly report, and stores m/s² (the catalog's unit).
  A record may say otherwise with the cityos extension field ``accel_unit``: ``"G"`` (default) or
  ``"m/s2"``. The sign convention is passed through unchanged.
- ``role`` is ``official_car``. The format is offered for the ``vehicle`` domain only.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

from cityos.ingest.rows import Rejected
from cityos.ingest.validation import TimeWindow, check_count

NAME = "d4c"
DOMAINS: frozenset[str] | None = frozenset({"vehicle"})
JST = timezone(timedelta(hours=9), "JST")
STANDARD_GRAVITY = 9.80665
ACCEL_UNITS = {"G": STANDARD_GRAVITY, "m/s2": 1.0}
ROLE = "official_car"
FIELDS = frozenset({"car_name", "measurement_date", "measurement_hour", "measurement_datetime", "measurement_ms",
                    "gps_error_meter", "latitude", "longitude", "accel_x_transverse", "accel_y_longitudinal",
                    "accel_unit"})
_DATETIME = re.compile(r"\s*(\d{4}[/-]\d{1,2}[/-]\d{1,2})[ T](\d{1,2}:\d{2}:\d{2}(?:\.\d{1,6})?)"
                       r"\s*(Z|[+-]\d{2}:?\d{2})?\s*", re.ASCII)
_DATE = re.compile(r"\s*(\d{4})[/-](\d{1,2})[/-](\d{1,2})\s*", re.ASCII)
_HOUR = re.compile(r"\s*(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?\s*", re.ASCII)
_NUMBER = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*", re.ASCII)


def _ascii(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def _number(record: dict, key: str) -> float | None:
    value = record.get(key)
    cls = value.__class__
    if cls is float or cls is int:
        if cls is float and not math.isfinite(value):  # type: ignore[arg-type]
            raise Rejected("non_finite", f"{key} is {value!r}")
        try:
            return float(value)  # type: ignore[arg-type]
        except OverflowError:
            raise Rejected("out_of_range", f"{key} is too large") from None
    if value is None:
        return None
    if cls is str:
        text = _ascii(value)  # type: ignore[arg-type]
        if not text.strip():
            return None
        try:
            number = float(text)  # also reads "nan", "inf" and "1_0": sorted out below
        except ValueError:
            number = math.nan
        if math.isfinite(number) and "_" not in text:
            return number
        if _NUMBER.fullmatch(text) is None:
            raise Rejected("bad_type", f"{key} must be numeric, got {text[:20]!r}")
        raise Rejected("out_of_range", f"{key}={text[:20]!r} is too large")
    raise Rejected("bad_type", f"{key} must be a number or a numeric string")


@lru_cache(maxsize=4096)
def _day(text: str) -> tuple[int, int, int] | None:
    """(year, month, day) of a date text (cached: the records of a message share a few dates)."""
    match = _DATE.fullmatch(_ascii(text))
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def _time(record: dict) -> datetime:
    """The record's time, from ``measurement_date`` + ``measurement_hour`` or ``measurement_datetime``,
    plus ``measurement_ms`` when the time has no fraction of its own."""
    stamp = record.get("measurement_datetime")
    if stamp is not None and stamp != "":
        if record.get("measurement_date") not in (None, "") or record.get("measurement_hour") not in (None, ""):
            raise Rejected("bad_time", "give measurement_datetime or measurement_date/hour, not both")
        if stamp.__class__ is not str or (m := _DATETIME.fullmatch(_ascii(stamp))) is None:
            raise Rejected("bad_time", f"cannot read measurement_datetime {str(stamp)[:30]!r}")
        t = _time({"measurement_date": m[1], "measurement_hour": m[2]})
        if m[3]:
            offset = m[3].replace(":", "")
            tz = UTC if offset == "Z" else timezone(
                (1 if offset[0] == "+" else -1) * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
            t = t.replace(tzinfo=tz)
        return _with_ms(t, record, has_fraction="." in m[2])
    return _with_ms(_date_hour(record), record, has_fraction="." in str(record.get("measurement_hour")))


def _with_ms(t: datetime, record: dict, has_fraction: bool) -> datetime:
    ms = record.get("measurement_ms")
    if ms is None or ms == "":
        return t
    value = _number(record, "measurement_ms")
    if value is None or not (0 <= value < 1000) or value != int(value):
        raise Rejected("bad_time", f"measurement_ms must be a whole number 0-999, got {str(ms)[:20]!r}")
    if has_fraction:
        raise Rejected("bad_time", "measurement_ms given for a time that already has a fraction")
    return t + timedelta(milliseconds=int(value))


def _date_hour(record: dict) -> datetime:
    date, hour = record.get("measurement_date"), record.get("measurement_hour")
    if date is None or hour is None or date == "" or hour == "":
        raise Rejected("missing_time", "a d4c record needs measurement_date and measurement_hour")
    if date.__class__ is not str or hour.__class__ is not str:
        raise Rejected("bad_time", "measurement_date and measurement_hour must be strings")
    day, h = _day(date), _HOUR.fullmatch(_ascii(hour))  # type: ignore[arg-type]
    if day is None or h is None:
        raise Rejected("bad_time", f"cannot read date {date[:20]!r} hour {hour[:20]!r}")  # type: ignore[index]
    fraction = h[4]
    try:
        return datetime(*day, int(h[1]), int(h[2]), int(h[3]), int(fraction.ljust(6, "0")) if fraction else 0,
                        tzinfo=JST)
    except ValueError:
        raise Rejected("bad_time", f"no such time: {date[:20]!r} {hour[:20]!r}") from None  # type: ignore[index]


def _reading(record: object) -> dict:
    if record.__class__ is not dict:
        raise Rejected("bad_shape", "a DATA for CITIZEN record is a JSON object")
    if not record.keys() <= FIELDS:  # type: ignore[attr-defined]
        unknown = sorted(k[:40] for k in record.keys() - FIELDS)  # type: ignore[attr-defined]
        raise Rejected("unknown_field", f"d4c records have no field {', '.join(map(repr, unknown))[:160]}")
    t = _time(record)  # type: ignore[arg-type]
    car = record.get("car_name")  # type: ignore[attr-defined]
    if car is not None and car.__class__ is not str:
        raise Rejected("bad_type", "car_name must be a string")
    lat, lon = _number(record, "latitude"), _number(record, "longitude")  # type: ignore[arg-type]
    if lat is None or lon is None:
        raise Rejected("void_fix", "a d4c record without latitude or longitude has no position")
    reading: dict = {"t": t, "lat": lat, "lon": lon, "role": ROLE}
    error = _number(record, "gps_error_meter")  # type: ignore[arg-type]
    if error is not None:
        reading["gps_error_m"] = error
    unit = record.get("accel_unit", "G")  # type: ignore[attr-defined]
    scale = ACCEL_UNITS.get(unit) if unit.__class__ is str else None
    if scale is None:
        raise Rejected("bad_unit", f"accel_unit must be one of {', '.join(ACCEL_UNITS)}")
    for source, target in (("accel_y_longitudinal", "accel_long"), ("accel_x_transverse", "accel_trans")):
        accel = _number(record, source)  # type: ignore[arg-type]
        if accel is not None:
            reading[target] = accel * scale
    return reading


def parse(document: object, domain: str, window: TimeWindow) -> list:
    """The readings of one d4c record or an array of them (times as aware JST datetimes)."""
    if document.__class__ is dict:
        return [_reading(document)]
    if document.__class__ is not list:
        raise Rejected("bad_shape", "expected a DATA for CITIZEN record or an array of records")
    check_count(len(document), "d4c records")  # type: ignore[arg-type]
    return [_reading(record) for record in document]  # type: ignore[attr-defined]
