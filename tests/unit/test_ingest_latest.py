"""The latest tables get each device's newest values, column by column by name (ingest/writer.py latest_of)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cityos.ingest.rows import ENERGY, HEALTH, VEHICLES, MetricRow, VehicleRow
from cityos.ingest.writer import (
    LATEST_POSITION_COLUMNS,
    LATEST_VALUE_COLUMNS,
    Batch,
    latest_of,
    metric_tuple,
    vehicle_tuple,
)

T0 = datetime(2026, 11, 24, tzinfo=UTC)


def _vehicle(t: datetime, speed: float, role: str, blade: bool) -> tuple:
    return vehicle_tuple(VehicleRow(t, "plow-01", 139.9, 37.5, speed, 90.0, 3.0, 0.1, 0.2, 0.3, role, blade))


def test_the_latest_position_is_the_newest_row_with_each_column_by_name():
    batch = Batch({VEHICLES: [_vehicle(T0 + timedelta(seconds=1), 30.0, "snowplow", True),
                              _vehicle(T0, 10.0, "bus", False)]})
    _values, positions = latest_of(batch)
    assert [dict(zip(LATEST_POSITION_COLUMNS, p, strict=True)) for p in positions] == [{
        "device_id": "plow-01", "time": T0 + timedelta(seconds=1), "geom": _vehicle(T0, 0, "", False)[2],
        "speed_kmh": 30.0, "heading_deg": 90.0, "role": "snowplow", "blade_down": True}]


def test_latest_values_carry_a_label_only_where_the_table_has_one():
    batch = Batch({HEALTH: [metric_tuple(MetricRow(T0, "band-01", "sleep_stage", 2.0, "deep"), True)],
                   ENERGY: [metric_tuple(MetricRow(T0, "home-01", "power_w", 5.0), False),
                            metric_tuple(MetricRow(T0 - timedelta(seconds=1), "home-01", "power_w", 7.0), False)]})
    values, _positions = latest_of(batch)
    as_dicts = {v[0]: dict(zip(LATEST_VALUE_COLUMNS, v, strict=True)) for v in values}
    assert as_dicts["band-01"] == {"device_id": "band-01", "metric": "sleep_stage", "time": T0, "value": 2.0,
                                   "label": "deep"}
    assert as_dicts["home-01"] == {"device_id": "home-01", "metric": "power_w", "time": T0, "value": 5.0,
                                   "label": None}
