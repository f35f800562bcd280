"""What ingest produces: rows shaped like the telemetry tables, or a :class:`Rejected` verdict.

Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from cityos.ingest.contract import MAX_SEQ, REASONS, SEQ_FIELD, WORKER_REASONS, Rejected

VEHICLES = "telemetry.vehicle_positions"
ENERGY = "telemetry.energy_readings"
HEALTH = "telemetry.health_readings"
MEASUREMENTS = "telemetry.measurements"

#: Reason codes and the verdict are the payload contract's (the gateway judges readings with them too).
__all__ = ["ENERGY", "HEALTH", "MAX_SEQ", "MEASUREMENTS", "REASONS", "SEQ_FIELD", "VEHICLES", "WORKER_REASONS",
           "MetricRow", "Parsed", "Rejected", "Row", "VehicleRow"]


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
