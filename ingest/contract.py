"""Payload contract v1 (``ingest/CONTRACT.md``) in code: the one place both the gateway and the server read.

Standard library only, and it imports nothing of cityos: the edge gateway (a Raspberry Pi with no
database, GIS or web stack) imports this module to build and check what it sends, and the server's
parsers (:mod:`cityos.ingest.normalise`, :mod:`cityos.ingest.formats`) import it to judge what
arrives. A drift between the two would dead-letter whole batches from the field, so nothing here is
written twice.

Sections: verdicts (reason codes), topics, limits, the metric catalog, time rules, value rules, and
the batch encoding. A new optional reading-message field is one line in :data:`BATCH_FIELDS`; a new
metric is one line in its domain's table.

The checks run once per value at up to 250,000 readings/s, so they are plain functions on plain
Python values, with the common valid case first and the error classification off the fast path.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

# -- verdicts -------------------------------------------------------------------------------------

#: Reason codes of rejected messages: stable, machine-readable, used in dead letters and metrics.
#: The order is the order in which :func:`cityos.ingest.normalise.parse_message` checks them.
REASONS: dict[str, str] = {
    "bad_topic": "the topic is not cityos/v1/{domain}/{device_id}/{stream} with a known domain and valid id",
    "topic_device_mismatch": "the authenticated MQTT user is neither the topic's device nor the service user",
    "too_large": "the payload exceeds 256 KiB",
    "unsupported_format": "the stream names no known payload format, or one not offered for the domain",
    "not_utf8": "the payload is not UTF-8",
    "bad_json": "the payload is not one valid JSON document",
    "bad_shape": "the JSON does not have the shape of the stream's format (or a reading has no metrics)",
    "batch_too_large": "more than 10,000 readings (SenML records, d4c records) in one message",
    "missing_time": "a reading has no observation time",
    "bad_time": "the observation time cannot be read or has no UTC offset",
    "future_time": "the observation time is more than 5 minutes ahead of the platform clock",
    "too_old": "the observation time is more than 30 days behind the platform clock",
    "duplicate_time": "two readings of one message have the same time (a SenML metric twice at one time)",
    "unknown_field": "a field is not in the domain's catalog (or not a field of the format)",
    "bad_type": "a value has the wrong JSON type (e.g. a string or boolean where a number belongs)",
    "non_finite": "a number is NaN or infinite (including the non-JSON literals NaN and Infinity)",
    "out_of_range": "a value is outside its plausible range or not one of its allowed choices",
    "bad_unit": "a SenML unit is not a unit the metric can be given in",
    "void_fix": "a GPS position of a receiver without a fix: exactly 90 degrees N or S, 0/0, or blank",
    # Checked by the worker against the device registry, never by the parser:
    "unknown_device": "the device is not registered",
    "revoked_device": "the device was revoked",
    "no_consent": "the owner of a personal-data device has no active consent",
    "internal_error": "the platform failed on this message (a bug); kept for replay after the fix",
}

#: Reasons only the worker gives (from the database); the pure parser never raises them.
WORKER_REASONS = frozenset({"unknown_device", "revoked_device", "no_consent", "internal_error"})


class Rejected(Exception):  # a verdict on input, not a programming error
    """The message breaks the payload contract.

    ``reason`` is one of :data:`REASONS`; ``detail`` is a short human explanation (at most a few
    hundred characters, never the whole payload).
    """

    __slots__ = ("detail", "reason")

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[type[Rejected], tuple[str, str]]:  # picklable across worker processes
        return (type(self), (self.reason, self.detail))


# -- topics ---------------------------------------------------------------------------------------

PREFIX = "cityos/v1"
DOMAIN_NAMES = ("hems", "vehicle", "health", "env")
DEVICE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{2,63}")
STREAM_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
#: The stream of the cityos JSON format (``{"batch": [...]}``), the one the gateway sends.
READINGS_STREAM = "readings"
#: Where the platform confirms to a device that its messages are stored (only that device may read it).
CONFIRM_PREFIX = "cityos/confirm/v1"
#: The MQTT 5 user property with which a publisher numbers a message for confirmation.
SEQ_PROPERTY = "seq"


class TopicInfo(NamedTuple):
    """The parts of a valid topic."""

    domain: str
    device_id: str
    stream: str


def topic_for(domain: str, device_id: str, stream: str = READINGS_STREAM, root: str = PREFIX) -> str:
    """The topic on which ``device_id`` publishes ``stream`` (not validated: see :func:`parse_topic`).

    ``root`` is ``cityos/v1`` except in tests that isolate themselves on a shared broker.
    """
    return f"{root}/{domain}/{device_id}/{stream}"


def confirm_topic(device_id: str) -> str:
    """The topic on which ``device_id`` is told which of its messages (by ``seq``) are stored."""
    return f"{CONFIRM_PREFIX}/{device_id}"


#: Where the platform commands a device (only the platform may publish; only that device may read).
COMMAND_PREFIX = "cityos/command/v1"
#: Commands a gateway obeys: ``resend`` ``{"stream": domain, "from": n, "to": m}`` (kept readings numbered n..m).
COMMANDS = ("resend",)


def command_topic(device_id: str, command: str = "resend") -> str:
    """The topic on which the platform sends ``device_id`` the command ``command``."""
    return f"{COMMAND_PREFIX}/{device_id}/{command}"


def is_valid_device_id(device_id: str) -> bool:
    """Whether ``device_id`` is a well-formed device id (also the device's MQTT user name)."""
    return DEVICE_ID.fullmatch(device_id) is not None


@lru_cache(maxsize=65_536)
def parse_topic(topic: str) -> TopicInfo:
    """Split a topic into domain, device id and stream; raises :class:`Rejected` ``bad_topic``.

    Results are cached (devices publish on the same few topics); rejections are not.
    """
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "cityos" or parts[1] != "v1":
        raise Rejected("bad_topic",
                       f"expected {PREFIX}/{{domain}}/{{device_id}}/{{stream}}, got {topic[:200]!r}")
    return check_topic_parts(parts[2], parts[3], parts[4])


def check_topic_parts(domain: str, device_id: str, stream: str) -> TopicInfo:
    """The parts of a topic, checked; raises :class:`Rejected` ``bad_topic`` naming the bad part."""
    if domain not in DOMAIN_NAMES:
        raise Rejected("bad_topic", f"unknown domain {domain[:40]!r}; one of {', '.join(DOMAIN_NAMES)}")
    if DEVICE_ID.fullmatch(device_id) is None:
        raise Rejected("bad_topic", f"device id {device_id[:70]!r} does not match {DEVICE_ID.pattern}")
    if STREAM_NAME.fullmatch(stream) is None:
        raise Rejected("bad_topic", f"stream {stream[:40]!r} does not match {STREAM_NAME.pattern}")
    return TopicInfo(domain, device_id, stream)


# -- limits ---------------------------------------------------------------------------------------

#: Largest payload the platform accepts, in bytes.
MAX_PAYLOAD_BYTES = 256 * 1024
#: The most readings (SenML records, d4c records) one message may carry.
MAX_READINGS = 10_000
#: How far ahead of the platform clock, and how far behind it, an observation time may be.
MAX_FUTURE = timedelta(minutes=5)
MAX_AGE = timedelta(days=30)
#: With ``max_age=None`` (backfills of old open data) times back to this instant are accepted.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)

# -- metric catalog -------------------------------------------------------------------------------
# The machine-readable form of the tables in ``ingest/CONTRACT.md``: per domain each field's kind,
# unit, plausible range and the SenML units it may be given in. (Which table a domain's rows go to is
# the server's business: :mod:`cityos.ingest.catalog`.)

NUMBER, BOOL, CHOICE, EVENT = "number", "bool", "choice", "event"
MAX_FLOAT = sys.float_info.max


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a reading.

    ``kind`` is ``number`` (a finite JSON number in ``[low, high]``), ``bool`` (``true``/``false``),
    ``choice`` (one of ``choices``) or ``event`` (the value 1, or ``true``). ``senml_units`` maps
    each unit a SenML record may give to the factor that converts it into ``unit``.
    """

    kind: str
    unit: str = ""
    low: float = -MAX_FLOAT
    high: float = MAX_FLOAT
    choices: tuple[str, ...] = ()
    senml_units: dict[str, float] = field(default_factory=dict, compare=False, hash=False)


WATT = {"W": 1.0, "kW": 1000.0}
KWH = {"kWh": 1.0, "Wh": 0.001}
ACCEL = {"m/s2": 1.0}

HEMS: dict[str, Field] = {
    "power_w": Field(NUMBER, "W", -30_000, 50_000, senml_units=WATT),
    "import_kwh": Field(NUMBER, "kWh", 0, 1e8, senml_units=KWH),
    "export_kwh": Field(NUMBER, "kWh", 0, 1e8, senml_units=KWH),
    "current_r_a": Field(NUMBER, "A", -500, 500, senml_units={"A": 1.0}),
    "current_t_a": Field(NUMBER, "A", -500, 500, senml_units={"A": 1.0}),
    "solar_w": Field(NUMBER, "W", 0, 30_000, senml_units=WATT),
    "solar_kwh": Field(NUMBER, "kWh", 0, 1e8, senml_units=KWH),
    "battery_soc_pct": Field(NUMBER, "%", 0, 100, senml_units={"%": 1.0, "%EL": 1.0}),
}

ROLES = ("snowplow", "patrol_car", "official_car", "bus")
VEHICLE: dict[str, Field] = {
    "lat": Field(NUMBER, "deg", -90, 90, senml_units={"lat": 1.0, "deg": 1.0}),
    "lon": Field(NUMBER, "deg", -180, 180, senml_units={"lon": 1.0, "deg": 1.0}),
    "speed_kmh": Field(NUMBER, "km/h", 0, 250, senml_units={"km/h": 1.0, "m/s": 3.6}),
    "heading_deg": Field(NUMBER, "deg", 0, 360, senml_units={"deg": 1.0, "rad": 180 / math.pi}),
    "gps_error_m": Field(NUMBER, "m", 0, 10_000, senml_units={"m": 1.0}),
    "accel_long": Field(NUMBER, "m/s2", -50, 50, senml_units=ACCEL),
    "accel_trans": Field(NUMBER, "m/s2", -50, 50, senml_units=ACCEL),
    "accel_vert": Field(NUMBER, "m/s2", -50, 50, senml_units=ACCEL),
    "role": Field(CHOICE, choices=ROLES),
    "blade_down": Field(BOOL),
}
#: Vehicle fields every reading must have.
VEHICLE_REQUIRED = ("lat", "lon")

#: Sleep stages and the codes stored as ``value`` (the stage's name is stored as ``label``).
SLEEP_STAGES = ("awake", "light", "deep", "rem")
SLEEP_CODES: dict[str, float] = {stage: float(code) for code, stage in enumerate(SLEEP_STAGES)}
HEALTH_FIELDS: dict[str, Field] = {
    "heart_rate_bpm": Field(NUMBER, "1/min", 20, 250, senml_units={"beat/min": 1.0, "1/min": 1.0}),
    "steps": Field(NUMBER, "count", 0, 100_000, senml_units={"count": 1.0, "steps": 1.0}),
    "body_temp_c": Field(NUMBER, "Cel", 30, 45, senml_units={"Cel": 1.0}),
    "sleep_stage": Field(CHOICE, choices=SLEEP_STAGES),
    "pillbox_open": Field(EVENT, "count", 1, 1, senml_units={"count": 1.0}),
}

#: Generic environment measurements (soil, air, water ...): any name of this form, any finite number.
ENV_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
ENV_FIELD = Field(NUMBER, "")

#: Each domain's named fields, and for domains with free metric names (env) the pattern and its field.
FIELDS: dict[str, dict[str, Field]] = {"hems": HEMS, "vehicle": VEHICLE, "health": HEALTH_FIELDS, "env": {}}
FREE_NAMES: dict[str, tuple[re.Pattern[str], Field]] = {"env": (ENV_NAME, ENV_FIELD)}
#: Names no reading field may have: ``t`` is the observation time, ``sn`` the reading's sequence number.
RESERVED = frozenset({"t", "sn"})
#: The reading field that carries the reading's sequence number in its stream (``cityos.ingest.gaps``; set by
#: the gateway's outbox, never by an adapter), and its largest value (PostgreSQL bigint).
SEQ_FIELD = "sn"
MAX_SEQ = 2**63 - 1


def field_for(domain: str, name: str) -> Field | None:
    """The catalog entry of field ``name`` in ``domain``, or ``None`` when the domain has no such field.

    Raises KeyError for a domain the contract does not know.
    """
    found = FIELDS[domain].get(name)
    if found is not None:
        return found
    free = FREE_NAMES.get(domain)
    if free is not None and name not in RESERVED and free[0].fullmatch(name):
        return free[1]
    return None


# -- time -----------------------------------------------------------------------------------------

_fromisoformat = datetime.fromisoformat
_fromtimestamp = datetime.fromtimestamp


class TimeWindow:
    """The observation times one message may carry, fixed at its arrival ``now`` (tz-aware)."""

    __slots__ = ("earliest", "earliest_ts", "latest", "latest_ts", "now", "now_ts")

    def __init__(self, now: datetime, *, max_age: timedelta | None = MAX_AGE,
                 max_future: timedelta = MAX_FUTURE) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.now = now.astimezone(UTC)
        self.now_ts = self.now.timestamp()
        self.latest = self.now + max_future
        self.earliest = EARLIEST if max_age is None else max(EARLIEST, self.now - max_age)
        self.latest_ts = self.latest.timestamp()
        self.earliest_ts = self.earliest.timestamp()


def _too_far(t: datetime, window: TimeWindow) -> Rejected:
    if t > window.latest:
        return Rejected("future_time", f"{t.isoformat()} is over 5 minutes ahead of {window.now.isoformat()}")
    return Rejected("too_old", f"{t.isoformat()} is before {window.earliest.isoformat()}")


def read_text_time(value: str) -> datetime:
    """An RFC 3339 time text as a datetime (aware if it has an offset); :class:`Rejected` ``bad_time``."""
    try:
        return _fromisoformat(value)
    except ValueError:
        pass
    try:  # RFC 3339 allows lower-case "t" and "z", which fromisoformat does not read
        if len(value) < 64:
            return _fromisoformat(value.upper())
    except ValueError:
        pass
    raise Rejected("bad_time", f"cannot read time {value[:40]!r}; use RFC 3339 with an offset")


def parse_time(value: object, window: TimeWindow) -> datetime:
    """An observation time as an aware UTC datetime, checked against ``window``.

    ``value`` is an RFC 3339 string with an offset, Unix epoch seconds (an int or float, not a
    boolean), or an aware ``datetime`` (from format parsers that read local-time fields).
    """
    if isinstance(value, str):
        t = read_text_time(value)
    elif value.__class__ is float or value.__class__ is int:
        epoch: float = value  # type: ignore[assignment]  # exactly int or float: the check above
        if window.earliest_ts <= epoch <= window.latest_ts:
            return _fromtimestamp(epoch, UTC)
        if epoch != epoch:  # NaN
            raise Rejected("bad_time", "epoch seconds are NaN")
        if epoch > window.latest_ts:
            hint = " (milliseconds instead of seconds?)" if 1e11 < epoch < 1e14 else ""
            raise Rejected("future_time", f"epoch seconds {short(epoch)} are more than 5 minutes ahead "
                                          f"of {window.now_ts:.0f}{hint}")
        raise Rejected("too_old", f"epoch seconds {short(epoch)} are before {window.earliest.isoformat()}")
    elif isinstance(value, datetime):
        t = value
    elif value is None:
        raise Rejected("missing_time", "the reading has no time 't'")
    else:
        raise Rejected("bad_time", f"time must be RFC 3339 text or epoch seconds, got {_json_type(value)}")
    if t.tzinfo is not UTC:  # convert first: comparing datetimes of different zones is slow
        if t.tzinfo is None or t.utcoffset() is None:
            raise Rejected("bad_time", f"time {t.isoformat()!r} has no UTC offset")
        try:
            t = t.astimezone(UTC)
        except OverflowError:  # year 1 or 9999 with an offset
            raise _too_far(t, window) from None
    if not window.earliest <= t <= window.latest:
        raise _too_far(t, window)
    return t


def format_time(epoch: float) -> str:
    """RFC 3339 UTC text with microseconds (the platform stores microsecond precision)."""
    return _fromtimestamp(epoch, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# -- values ---------------------------------------------------------------------------------------

def short(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for rejection details."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _json_type(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(value.__class__, value.__class__.__name__)


def number_error(name: str, value: object, low: float, high: float) -> Rejected:
    """The rejection of ``value`` for a numeric field (call only when the value failed the check)."""
    if not (value.__class__ is float or value.__class__ is int):
        return Rejected("bad_type", f"{name[:64]} must be a number, got {_json_type(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        return Rejected("non_finite", f"{name[:64]} is {value!r}")
    return Rejected("out_of_range", f"{name[:64]}={short(value)} is outside [{low:g}, {high:g}]")


def check_number(name: str, value: object, low: float, high: float) -> float:
    """``value`` as a float if it is a finite JSON number in ``[low, high]``; else :class:`Rejected`."""
    if (value.__class__ is float or value.__class__ is int) and low <= value <= high:  # type: ignore[operator]
        return float(value)  # type: ignore[arg-type]  # exactly int or float: the check above
    raise number_error(name, value, low, high)


def check_value(name: str, spec: Field, value: object) -> float | bool | str:
    """The validated value of field ``name``: a float, a bool (``bool`` fields) or a str (``choice``)."""
    kind = spec.kind
    if kind == NUMBER:
        return check_number(name, value, spec.low, spec.high)
    if kind == CHOICE:
        if not isinstance(value, str):
            raise Rejected("bad_type", f"{name} must be a string, one of {', '.join(spec.choices)}")
        if value not in spec.choices:
            raise Rejected("out_of_range", f"{name}={value[:40]!r} is not one of {', '.join(spec.choices)}")
        return value
    if kind == BOOL:
        if not isinstance(value, bool):
            raise Rejected("bad_type", f"{name} must be true or false, got {_json_type(value)}")
        return value
    if kind == EVENT:
        if value is True or ((value.__class__ is int or value.__class__ is float) and value == 1):
            return 1.0
        if value.__class__ in (int, float):
            raise number_error(name, value, 1, 1)
        raise Rejected("bad_type", f"{name} is an event: its value must be 1 (or true)")
    raise AssertionError(f"unknown field kind {kind!r}")  # pragma: no cover - catalog error


def check_position(lat: float, lon: float) -> None:
    """Refuse (``void_fix``) the bogus positions GPS receivers report without a fix.

    Receivers emit exactly 90° N (or S) before the first fix, and some 0°/0° ("null island").
    """
    if lat == 90.0 or lat == -90.0 or (lat == 0.0 and lon == 0.0):
        raise Rejected("void_fix", f"position lat={lat!r} lon={lon!r} is a receiver without a fix")


def check_count(count: int, what: str = "readings") -> None:
    """Refuse an empty message (``bad_shape``) or one with more than :data:`MAX_READINGS` items."""
    if count > MAX_READINGS:
        raise Rejected("batch_too_large", f"{count} {what}; at most {MAX_READINGS} per message")
    if count == 0:
        raise Rejected("bad_shape", f"no {what}")


# -- batch encoding (stream ``readings``) ---------------------------------------------------------

#: The key that holds the readings of a batch message: ``{"batch": [reading, ...]}``.
BATCH_KEY = "batch"
#: Optional keys a batch message may carry beside ``batch``: name -> the check of its value (returns
#: the value to keep, raises :class:`Rejected`). An optional field is one line here.
BATCH_FIELDS: dict[str, Callable[[object], object]] = {}
#: Every key a batch message may have.
BATCH_KEYS = frozenset({BATCH_KEY, *BATCH_FIELDS})


def encode_json(document: object) -> bytes:
    """Compact UTF-8 JSON as the platform reads it (no NaN or Infinity: ValueError)."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def reading(t: float, metrics: Mapping[str, object]) -> dict[str, object]:
    """One reading object: ``{"t": RFC 3339, **metrics}`` (``t`` is never a metric name)."""
    return {"t": format_time(t), **metrics}


class BatchBuilder:
    """Builds one ``readings`` message readings at a time, within a size and a count limit.

    :meth:`add` encodes a reading and tells whether it still fits; :meth:`payload` gives the message.
    The encoded message is exactly ``{"batch":[...], <optional fields>}`` as :func:`encode_json`
    writes it, and :attr:`size` is its length in bytes.
    """

    __slots__ = ("_fields", "_items", "max_bytes", "max_count", "size")

    def __init__(self, *, max_bytes: int = MAX_PAYLOAD_BYTES, max_count: int = MAX_READINGS,
                 **fields: Any) -> None:
        unknown = set(fields) - set(BATCH_FIELDS)
        if unknown:
            raise ValueError(f"batch messages have no field {', '.join(sorted(unknown))}")
        self._fields = b"".join(b"," + encode_json(name) + b":" + encode_json(BATCH_FIELDS[name](value))
                                for name, value in fields.items())
        self._items: list[bytes] = []
        self.max_bytes = min(max_bytes, MAX_PAYLOAD_BYTES)
        self.max_count = min(max_count, MAX_READINGS)
        self.size = len(self._envelope(b""))

    def _envelope(self, items: bytes) -> bytes:
        return b'{"' + BATCH_KEY.encode() + b'":[' + items + b"]" + self._fields + b"}"

    @property
    def count(self) -> int:
        """Readings added so far."""
        return len(self._items)

    def add(self, item: Mapping[str, object], *, force: bool = False) -> bool:
        """Add one reading if the message stays within its limits; False (nothing added) if not.

        ``force`` adds it regardless of the size limit (a queue's first reading, so that one oversized
        reading cannot block the queue behind it: the platform refuses it as ``too_large``).
        """
        if len(self._items) >= self.max_count:
            return False
        encoded = encode_json(item)
        grown = self.size + len(encoded) + (1 if self._items else 0)
        if grown > self.max_bytes and not force:
            return False
        self._items.append(encoded)
        self.size = grown
        return True

    def payload(self) -> bytes:
        """The message's bytes."""
        return self._envelope(b",".join(self._items))


def encode_batch(readings: Iterable[Mapping[str, object]], **fields: Any) -> bytes:
    """The ``readings`` message ``{"batch": [...]}``; ValueError if it breaks the size or count limit."""
    builder = BatchBuilder(max_bytes=MAX_PAYLOAD_BYTES, max_count=MAX_READINGS, **fields)
    for item in readings:
        if not builder.add(item):
            raise ValueError(f"a batch holds at most {MAX_READINGS} readings in {MAX_PAYLOAD_BYTES} bytes")
    return builder.payload()
