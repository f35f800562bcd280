"""Payload contract v1 (``ingest/CONTRACT.md``) as the gateway needs it: topics, readings, batches.

Standard library only. The server judges a message all or nothing, so the gateway checks each metric
against the contract's table *before* a reading enters the outbox: one bad value must not take a
whole batch of good readings to the dead-letter store with it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

DOMAINS = ("hems", "vehicle", "health", "env")
DEVICE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{2,63}")
DEFAULT_ROOT = "cityos/v1"
STREAM = "readings"
#: Largest payload the platform accepts (bytes) and most readings in one batch.
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_BATCH = 10_000
ENV_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
#: A reading's sequence number in its stream (set by the outbox, never by an adapter; contract: "Sequence numbers").
SEQ_FIELD = "sn"


@dataclass(frozen=True, slots=True)
class Spec:
    """One metric field: ``number`` in ``[low, high]``, ``choice`` of ``choices``, ``bool`` or ``event``."""

    kind: str
    low: float = -1.8e308
    high: float = 1.8e308
    choices: tuple[str, ...] = ()


def _num(low: float, high: float) -> Spec:
    return Spec("number", low, high)


METRICS: dict[str, dict[str, Spec]] = {
    "hems": {
        "power_w": _num(-30_000, 50_000), "import_kwh": _num(0, 1e8), "export_kwh": _num(0, 1e8),
        "current_r_a": _num(-500, 500), "current_t_a": _num(-500, 500), "solar_w": _num(0, 30_000),
        "solar_kwh": _num(0, 1e8), "battery_soc_pct": _num(0, 100),
    },
    "vehicle": {
        "lat": _num(-90, 90), "lon": _num(-180, 180), "speed_kmh": _num(0, 250), "heading_deg": _num(0, 360),
        "gps_error_m": _num(0, 10_000), "accel_long": _num(-50, 50), "accel_trans": _num(-50, 50),
        "accel_vert": _num(-50, 50), "role": Spec("choice", choices=("snowplow", "patrol_car", "official_car", "bus")),
        "blade_down": Spec("bool"),
    },
    "health": {
        "heart_rate_bpm": _num(20, 250), "steps": _num(0, 100_000), "body_temp_c": _num(30, 45),
        "sleep_stage": Spec("choice", choices=("awake", "light", "deep", "rem")), "pillbox_open": Spec("event"),
    },
}


def topic(domain: str, device_id: str, root: str = DEFAULT_ROOT, stream: str = STREAM) -> str:
    """``{root}/{domain}/{device_id}/{stream}``; root is ``cityos/v1`` except in tests."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; one of {', '.join(DOMAINS)}")
    if not DEVICE_ID.fullmatch(device_id):
        raise ValueError(f"device id {device_id!r} does not match {DEVICE_ID.pattern}")
    return f"{root}/{domain}/{device_id}/{stream}"


def format_time(epoch: float) -> str:
    """RFC 3339 UTC text with microseconds (the platform stores microsecond precision)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(value: object) -> float:
    """A reading's ``t`` (RFC 3339 text with offset, or epoch seconds) as epoch seconds; ValueError if not."""
    if isinstance(value, bool):
        raise ValueError("t must be RFC 3339 text or epoch seconds, not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("t is not finite")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("t must be RFC 3339 text or epoch seconds")
    text = value.strip()
    text = text[:-1] + "+00:00" if text[-1:] in "Zz" else text
    parsed = datetime.fromisoformat(text.replace("t", "T", 1) if "t" in text[:11] else text)
    if parsed.tzinfo is None:
        raise ValueError(f"t {value!r} has no UTC offset")
    return parsed.timestamp()


def check_metric(domain: str, name: str, value: object) -> str | None:
    """Why ``name = value`` breaks the contract for ``domain`` (a verdict code), or None if it is fine."""
    if name == "t" or name == SEQ_FIELD:
        return "unknown_field"
    if domain == "env":
        spec: Spec | None = Spec("number") if ENV_NAME.fullmatch(name) else None
    else:
        spec = METRICS.get(domain, {}).get(name)
    if spec is None:
        return "unknown_field"
    if spec.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "bad_type"
        if not math.isfinite(value):
            return "non_finite"
        return None if spec.low <= value <= spec.high else "out_of_range"
    if spec.kind == "choice":
        if not isinstance(value, str):
            return "bad_type"
        return None if value in spec.choices else "out_of_range"
    if spec.kind == "bool":
        return None if isinstance(value, bool) else "bad_type"
    return None if value is True or (not isinstance(value, bool) and value == 1) else "out_of_range"  # event


def clean_metrics(domain: str, metrics: dict[str, object]) -> tuple[dict[str, object], dict[str, str]]:
    """Split ``metrics`` into those the contract accepts and the refused ones (name -> verdict code).

    ``None`` values mean "not measured" and are left out silently.
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
        if "lat" not in metrics or "lon" not in metrics:
            return "bad_shape"
        lat, lon = metrics["lat"], metrics["lon"]
        if abs(lat) == 90 or (lat == 0 and lon == 0):  # type: ignore[arg-type]
            return "void_fix"
    elif not metrics:
        return "bad_shape"
    return None


def reading(t: float, metrics: dict[str, object]) -> dict[str, object]:
    """One reading object: ``{"t": RFC 3339, **metrics}``."""
    return {"t": format_time(t), **metrics}


def encode_batch(readings: list[dict[str, object]]) -> bytes:
    """The ``readings`` payload ``{"batch": [...]}`` as compact UTF-8 JSON."""
    return json.dumps({"batch": readings}, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
