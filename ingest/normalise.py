"""The pure core of MQTT ingest: topic and raw payload in, validated table rows out.

:func:`parse_message` parses the topic, checks the publisher and the size, decodes the JSON, lets the
stream's format (:mod:`cityos.ingest.formats`) turn it into readings, and :func:`build_rows` validates
each reading against the catalog and builds :class:`~cityos.ingest.rows.VehicleRow` or
:class:`~cityos.ingest.rows.MetricRow` rows. A message is all or nothing: the first bad reading
rejects it with :class:`~cityos.ingest.rows.Rejected`. No database, no broker, no clock: the caller
passes ``now``.

Speed matters (250,000 readings/s over two processes): the loops below use plain dicts and tuples,
check the common valid case first and classify errors only when one occurs.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from cityos.ingest.catalog import BOOL, CHOICE, DOMAINS, NUMBER, VEHICLE, Field, field_for
from cityos.ingest.contract import MAX_PAYLOAD_BYTES
from cityos.ingest.formats import format_for
from cityos.ingest.rows import MAX_SEQ, MetricRow, Parsed, Rejected, Row, VehicleRow
from cityos.ingest.topics import TopicInfo, check_publisher, parse_topic
from cityos.ingest.validation import (
    MAX_AGE,
    TimeWindow,
    check_count,
    check_position,
    check_value,
    number_error,
    parse_time,
)

MAX_PAYLOAD = MAX_PAYLOAD_BYTES

try:
    import orjson
except ImportError:  # the edge gateway may lack orjson: the standard library gives the same verdicts
    orjson = None  # type: ignore[assignment]

__all__ = ["MAX_PAYLOAD", "Parsed", "Rejected", "TopicInfo", "build_rows", "decode_json", "parse_message"]


def _refuse_constant(name: str) -> object:
    raise Rejected("non_finite", f"{name} is not a JSON number")


def _decode_slowly(payload: bytes) -> object:
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected("not_utf8", f"payload is not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise Rejected("bad_json", str(exc)[:200]) from None


def decode_json(payload: bytes) -> object:
    """The JSON document in ``payload``; :class:`Rejected` ``not_utf8``, ``bad_json`` or ``non_finite``.

    orjson when installed, else the standard library. A document orjson refuses is re-read by the
    standard library, so the verdict does not depend on orjson: the literals ``NaN``/``Infinity`` are
    ``non_finite``, and numbers beyond the float range (``1e999``) are read as infinite and then
    refused as ``non_finite`` by validation.
    """
    if orjson is not None:
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            pass
    return _decode_slowly(payload)


_new = tuple.__new__  # builds NamedTuple rows without the Python-level __new__ (3x faster)
_VEHICLE_SLOTS = VehicleRow._fields[2:]  # lon, lat, speed_kmh, ... in row order
_VEHICLE_INDEX = {name: i for i, name in enumerate(_VEHICLE_SLOTS)}
_VEHICLE_SPECS = tuple(VEHICLE[name] for name in _VEHICLE_SLOTS)
_VEHICLE_EMPTY = (None,) * len(_VEHICLE_SLOTS)


def _no_field(domain: str, name: str) -> Rejected:
    return Rejected("unknown_field", f"{name[:64]!r} is not a {domain} field")


def _vehicle_rows(device_id: str, readings: list, window: TimeWindow) -> list[Row]:
    rows: list[Row] = []
    append = rows.append
    index, specs = _VEHICLE_INDEX, _VEHICLE_SPECS
    seen: set[datetime] | None = set() if len(readings) > 1 else None
    for reading in readings:
        if reading.__class__ is not dict:
            raise Rejected("bad_shape", "a reading must be a JSON object")
        t = parse_time(reading.get("t"), window)
        if seen is not None:
            if t in seen:
                raise Rejected("duplicate_time", f"two readings at {t.isoformat()}")
            seen.add(t)
        values: list[object] = list(_VEHICLE_EMPTY)
        for name, value in reading.items():
            i = index.get(name)
            if i is None:
                if name == "t" or name == "sn":
                    continue
                raise _no_field("vehicle", name)
            spec = specs[i]
            if spec.kind == NUMBER:
                cls = value.__class__
                if (cls is float or cls is int) and spec.low <= value <= spec.high:
                    values[i] = float(value)
                    continue
                raise number_error(name, value, spec.low, spec.high)
            values[i] = check_value(name, spec, value)
        lon, lat = values[0], values[1]
        if lat is None or lon is None:
            raise Rejected("bad_shape", "a vehicle reading needs lat and lon")
        if lat == 90.0 or lat == -90.0 or (lat == 0.0 and lon == 0.0):
            check_position(lat, lon)  # type: ignore[arg-type]
        append(_new(VehicleRow, (t, device_id, *values)))
    return rows


def _coded(name: str, spec: Field, value: object) -> tuple[float, str | None]:
    """A non-numeric metric as (value, label): choices by their index, booleans as 1/0, events as 1."""
    checked = check_value(name, spec, value)
    if spec.kind == CHOICE:
        return float(spec.choices.index(checked)), checked  # type: ignore[arg-type,return-value]
    if spec.kind == BOOL:
        return (1.0 if checked else 0.0), None
    return checked, None  # type: ignore[return-value]


def _metric_rows(domain: str, device_id: str, readings: list, window: TimeWindow) -> list[Row]:
    rows: list[Row] = []
    append = rows.append
    fields = DOMAINS[domain].fields
    seen: set[datetime] | None = set() if len(readings) > 1 else None
    for reading in readings:
        if reading.__class__ is not dict:
            raise Rejected("bad_shape", "a reading must be a JSON object")
        t = parse_time(reading.get("t"), window)
        if seen is not None:
            if t in seen:
                raise Rejected("duplicate_time", f"two readings at {t.isoformat()}")
            seen.add(t)
        if len(reading) < 2 or (len(reading) == 2 and "sn" in reading):
            raise Rejected("bad_shape", "a reading needs at least one metric besides t (and sn)")
        for name, value in reading.items():
            spec = fields.get(name)
            if spec is None:
                if name == "t" or name == "sn":
                    continue
                spec = field_for(domain, name)
                if spec is None:
                    raise _no_field(domain, name)
            if spec.kind == NUMBER:
                cls = value.__class__
                if (cls is float or cls is int) and spec.low <= value <= spec.high:
                    append(_new(MetricRow, (t, device_id, name, float(value), None)))
                    continue
                raise number_error(name, value, spec.low, spec.high)
            append(_new(MetricRow, (t, device_id, name, *_coded(name, spec, value))))
    return rows


def build_rows(domain: str, device_id: str, readings: list, window: TimeWindow) -> Parsed:
    """Validate ``readings`` (dicts with ``t`` and catalog fields) and build the domain's table rows.

    Raises :class:`Rejected` at the first bad reading (all or nothing).
    """
    check_count(len(readings))
    if domain == "vehicle":
        rows = _vehicle_rows(device_id, readings, window)
    else:
        rows = _metric_rows(domain, device_id, readings, window)
    return Parsed({DOMAINS[domain].table: rows}, len(readings), _sequences(readings))


def _sequences(readings: list[dict]) -> list[int]:
    """The readings' sequence numbers (``sn``: optional, an integer 1..2^63-1); :class:`Rejected` if one is bad."""
    numbers = [r["sn"] for r in readings if "sn" in r]
    for n in numbers:
        if n.__class__ is not int:
            raise Rejected("bad_type", f"sn must be an integer, not {str(n)[:40]!r}")
        if not 1 <= n <= MAX_SEQ:
            raise Rejected("out_of_range", f"sn {n} is outside 1..{MAX_SEQ}")
    return numbers


def parse_message(topic: str, payload: bytes, *, now: datetime, client_username: str | None = None,
                  max_age: timedelta | None = MAX_AGE) -> tuple[TopicInfo, Parsed]:
    """Parse and validate one MQTT message into rows; raises :class:`Rejected` with a reason code.

    ``now`` is the platform clock at arrival (tz-aware); ``client_username`` the authenticated MQTT
    user when known (it must be the topic's device or the service user); ``max_age`` how old
    observations may be (``None``: back to 1970, for backfills of old open data; the MQTT worker
    keeps the default of 30 days). Checks run in the order of :data:`cityos.ingest.rows.REASONS`.
    """
    info = parse_topic(topic)
    check_publisher(info, client_username)
    if len(payload) > MAX_PAYLOAD:
        raise Rejected("too_large", f"{len(payload)} bytes; at most {MAX_PAYLOAD}")
    fmt = format_for(info.stream, info.domain)
    document = decode_json(payload)
    window = TimeWindow(now, max_age=max_age)
    readings = fmt.parse(document, info.domain, window)
    return info, build_rows(info.domain, info.device_id, readings, window)
