"""The gateway's use of the payload contract (:mod:`cityos.ingest.contract`): checks before the outbox.

Standard library only. The server judges a message all or nothing, so the gateway checks each metric
with the contract's own rules *before* a reading enters the outbox: one bad value must not take a
whole batch of good readings to the dead-letter store with it. Nothing of the contract is repeated
here: topics, the catalog, the time rules and the batch encoding are the contract's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cityos.ingest.contract import (
    DEVICE_ID,
    MAX_PAYLOAD_BYTES,
    MAX_READINGS,
    PREFIX,
    READINGS_STREAM,
    VEHICLE_REQUIRED,
    Rejected,
    TimeWindow,
    check_position,
    check_topic_parts,
    check_value,
    field_for,
    parse_time,
    topic_for,
)

__all__ = [
    "DEFAULT_ROOT",
    "DEVICE_ID",
    "MAX_BATCH",
    "MAX_PAYLOAD_BYTES",
    "check_metric",
    "clean_metrics",
    "read_time",
    "reading_problem",
    "topic",
]

DEFAULT_ROOT = PREFIX
MAX_BATCH = MAX_READINGS


def topic(domain: str, device_id: str, root: str = DEFAULT_ROOT, stream: str = READINGS_STREAM) -> str:
    """``{root}/{domain}/{device_id}/{stream}``, checked; ValueError naming the bad part."""
    try:
        check_topic_parts(domain, device_id, stream)
    except Rejected as exc:
        raise ValueError(exc.detail) from None
    return topic_for(domain, device_id, stream, root)


def read_time(value: object) -> float:
    """A reading's ``t`` (RFC 3339 text with offset, or epoch seconds) as epoch seconds; ValueError if not.

    The contract's time rule with a wider window: no lower bound (the outbox drops expired readings
    itself) and a day ahead (a device's clock may run ahead of the gateway's; epoch milliseconds, a
    common mistake, are still refused).
    """
    try:
        return parse_time(value, TimeWindow(datetime.now(UTC), max_age=None, max_future=_AHEAD)).timestamp()
    except Rejected as exc:
        raise ValueError(exc.detail) from None


_AHEAD = timedelta(days=1)


def check_metric(domain: str, name: str, value: object) -> str | None:
    """Why ``name = value`` breaks the contract for ``domain`` (a verdict code), or None if it is fine."""
    spec = field_for(domain, name)
    if spec is None:
        return "unknown_field"
    try:
        check_value(name, spec, value)
    except Rejected as exc:
        return exc.reason
    return None


def clean_metrics(domain: str, metrics: dict[str, object]) -> tuple[dict[str, object], dict[str, str]]:
    """Split ``metrics`` into those the contract accepts and the refused ones (name -> verdict code).

    ``None`` values mean "not measured" and are left out silently; floats are rounded to 6 decimals.
    """
    good: dict[str, object] = {}
    bad: dict[str, str] = {}
    for name, value in metrics.items():
        if value is None:
            continue
        if isinstance(value, float):
            value = round(value, 6)
        reason = check_metric(domain, name, value)
        if reason:
            bad[name] = reason
        else:
            good[name] = value
    return good, bad


def reading_problem(domain: str, metrics: dict[str, object]) -> str | None:
    """Why a reading with these (clean) metrics would be refused as a whole, or None."""
    if domain == "vehicle":
        if any(name not in metrics for name in VEHICLE_REQUIRED):
            return "bad_shape"
        try:
            check_position(metrics["lat"], metrics["lon"])  # type: ignore[arg-type]  # clean: numbers
        except Rejected as exc:
            return exc.reason
    elif not metrics:
        return "bad_shape"
    return None
