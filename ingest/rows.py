"""What ingest produces: rows shaped like the telemetry tables, or a :class:`Rejected` verdict.

Standard library only: the edge gateway imports this module too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

VEHICLES = "telemetry.vehicle_positions"
ENERGY = "telemetry.energy_readings"
HEALTH = "telemetry.health_readings"
MEASUREMENTS = "telemetry.measurements"

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

#: The reading field that carries the reading's sequence number in its stream (``cityos.ingest.gaps``), and
#: its largest value (PostgreSQL bigint).
SEQ_FIELD = "sn"
MAX_SEQ = 2**63 - 1

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

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.reason, self.detail))


class VehicleRow(NamedTuple):
    """One vehicle observation: a row of ``telemetry.vehicle_positions``, key (device_id, time)."""

    time: datetime
    device_id: str
    lon: float
    lat: float
    speed_kmh: float | None
    heading_deg: float | None
    gps_error_m: float | None
    accel_long: float | None
    accel_trans: float | None
    accel_vert: float | None
    role: str | None
    blade_down: bool | None


class MetricRow(NamedTuple):
    """One metric value: a row of the energy, health or measurements table, key (device_id, metric, time).

    ``label`` carries the text of a categorical metric (``sleep_stage``), whose ``value`` is then
    the category's code.
    """

    time: datetime
    device_id: str
    metric: str
    value: float
    label: str | None = None


Row = VehicleRow | MetricRow


@dataclass(slots=True)
class Parsed:
    """The rows of one message, per table, how many readings (observation times) it held, and their
    sequence numbers (payload field ``sn``; only of readings that carry one)."""

    rows_by_table: dict[str, list[Row]] = field(default_factory=dict)
    reading_count: int = 0
    sequences: list[int] = field(default_factory=list)

    @property
    def row_count(self) -> int:
        """The number of rows over all tables."""
        return sum(len(rows) for rows in self.rows_by_table.values())
