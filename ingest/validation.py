"""Checks of single values against the contract: observation times, numbers, choices, positions.

These run once per value at up to 250,000 readings/s, so they are plain functions on plain Python
values (no pydantic), with the common valid case first and the error classification off the fast path.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from cityos.ingest.catalog import BOOL, CHOICE, EVENT, NUMBER, Field
from cityos.ingest.rows import Rejected

MAX_FUTURE = timedelta(minutes=5)
MAX_AGE = timedelta(days=30)
#: With ``max_age=None`` (backfills of old open data) times back to this instant are accepted.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)

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


def _read_text_time(value: str) -> datetime:
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
    cls = value.__class__
    if cls is str:
        t = _read_text_time(value)  # type: ignore[arg-type]
    elif cls is float or cls is int:
        if window.earliest_ts <= value <= window.latest_ts:  # type: ignore[operator]
            return _fromtimestamp(value, UTC)  # type: ignore[arg-type]
        if value != value:  # NaN
            raise Rejected("bad_time", "epoch seconds are NaN")
        if value > window.latest_ts:  # type: ignore[operator]
            hint = " (milliseconds instead of seconds?)" if 1e11 < value < 1e14 else ""  # type: ignore[operator]
            raise Rejected("future_time", f"epoch seconds {short(value)} are more than 5 minutes ahead "
                                          f"of {window.now_ts:.0f}{hint}")
        raise Rejected("too_old", f"epoch seconds {short(value)} are before {window.earliest.isoformat()}")
    elif cls is datetime:
        t = value  # type: ignore[assignment]
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


def short(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for rejection details."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _json_type(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(value.__class__, value.__class__.__name__)


def number_error(name: str, value: object, low: float, high: float) -> Rejected:
    """The rejection of ``value`` for a numeric field (call only when the value failed the check)."""
    cls = value.__class__
    if cls is not float and cls is not int:
        return Rejected("bad_type", f"{name[:64]} must be a number, got {_json_type(value)}")
    if cls is float and not math.isfinite(value):  # type: ignore[arg-type]
        return Rejected("non_finite", f"{name[:64]} is {value!r}")
    return Rejected("out_of_range", f"{name[:64]}={short(value)} is outside [{low:g}, {high:g}]")


def check_number(name: str, value: object, low: float, high: float) -> float:
    """``value`` as a float if it is a finite JSON number in ``[low, high]``; else :class:`Rejected`."""
    cls = value.__class__
    if (cls is float or cls is int) and low <= value <= high:  # type: ignore[operator]
        return float(value)  # type: ignore[arg-type]
    raise number_error(name, value, low, high)


def check_value(name: str, spec: Field, value: object) -> float | bool | str:
    """The validated value of field ``name``: a float, a bool (``bool`` fields) or a str (``choice``)."""
    kind = spec.kind
    if kind == NUMBER:
        return check_number(name, value, spec.low, spec.high)
    if kind == CHOICE:
        if value.__class__ is not str:
            raise Rejected("bad_type", f"{name} must be a string, one of {', '.join(spec.choices)}")
        if value not in spec.choices:
            raise Rejected("out_of_range", f"{name}={value[:40]!r} is not one of {', '.join(spec.choices)}")
        return value  # type: ignore[return-value]
    if kind == BOOL:
        if value.__class__ is not bool:
            raise Rejected("bad_type", f"{name} must be true or false, got {_json_type(value)}")
        return value  # type: ignore[return-value]
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


#: The most readings (SenML records, d4c records) one message may carry.
MAX_READINGS = 10_000


def check_count(count: int, what: str = "readings") -> None:
    """Refuse an empty message (``bad_shape``) or one with more than :data:`MAX_READINGS` items."""
    if count > MAX_READINGS:
        raise Rejected("batch_too_large", f"{count} {what}; at most {MAX_READINGS} per message")
    if count == 0:
        raise Rejected("bad_shape", f"no {what}")
