"""Stream ``readings`` (cityos JSON): valid single and batch messages become the expected rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from cityos.ingest.normalise import parse_message
from cityos.ingest.rows import ENERGY, HEALTH, MEASUREMENTS, VEHICLES, MetricRow, Rejected, VehicleRow

NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 24, 0, 59, 0, 250_000, tzinfo=UTC)


def parse(domain: str, document: object, device: str = "dev-001", **kwargs):
    payload = json.dumps(document).encode()
    return parse_message(f"cityos/v1/{domain}/{device}/readings", payload, now=NOW, **kwargs)


def test_a_single_hems_reading_becomes_one_energy_row_per_metric():
    info, parsed = parse("hems", {"t": "2026-11-24T09:59:00.250+09:00", "power_w": -1200.5, "import_kwh": 12})
    assert info.domain == "hems"
    assert parsed.reading_count == 1
    assert parsed.rows_by_table == {ENERGY: [
        MetricRow(T0, "dev-001", "power_w", -1200.5, None),
        MetricRow(T0, "dev-001", "import_kwh", 12.0, None),
    ]}


def test_row_times_are_utc_and_values_are_floats():
    _, parsed = parse("hems", {"t": "2026-11-24T09:59:00.250+09:00", "import_kwh": 12})
    row = parsed.rows_by_table[ENERGY][0]
    assert row.time.tzinfo is UTC
    assert type(row.value) is float


def test_a_batch_becomes_rows_of_all_its_readings():
    batch = [{"t": (T0 + timedelta(seconds=i)).isoformat(), "power_w": 100 + i} for i in range(3)]
    _, parsed = parse("hems", {"batch": batch})
    assert parsed.reading_count == 3
    assert [(r.time, r.value) for r in parsed.rows_by_table[ENERGY]] == [
        (T0 + timedelta(seconds=i), 100.0 + i) for i in range(3)]


def test_a_vehicle_reading_becomes_one_vehicle_row():
    reading = {"t": T0.isoformat(), "lat": 37.4945, "lon": 139.9298, "speed_kmh": 31.5, "heading_deg": 271,
               "gps_error_m": 4.5, "accel_long": 0.3, "accel_trans": -0.2, "accel_vert": 0.05,
               "role": "snowplow", "blade_down": True}
    _, parsed = parse("vehicle", reading, device="plow-07")
    assert parsed.rows_by_table == {VEHICLES: [VehicleRow(
        T0, "plow-07", 139.9298, 37.4945, 31.5, 271.0, 4.5, 0.3, -0.2, 0.05, "snowplow", True)]}


def test_optional_vehicle_fields_are_none():
    _, parsed = parse("vehicle", {"t": T0.isoformat(), "lat": 37.5, "lon": 139.9})
    assert parsed.rows_by_table[VEHICLES][0] == VehicleRow(
        T0, "dev-001", 139.9, 37.5, None, None, None, None, None, None, None, None)


def test_sleep_stage_is_stored_as_code_with_the_stage_as_label():
    _, parsed = parse("health", {"t": T0.isoformat(), "sleep_stage": "deep"})
    assert parsed.rows_by_table == {HEALTH: [MetricRow(T0, "dev-001", "sleep_stage", 2.0, "deep")]}


def test_a_pillbox_event_is_stored_as_one():
    _, parsed = parse("health", {"t": T0.isoformat(), "pillbox_open": True})
    assert parsed.rows_by_table[HEALTH][0].value == 1.0


def test_health_numbers_go_to_the_health_table():
    reading = {"t": T0.isoformat(), "heart_rate_bpm": 72, "steps": 120, "body_temp_c": 36.6}
    _, parsed = parse("health", reading)
    assert [(r.metric, r.value) for r in parsed.rows_by_table[HEALTH]] == [
        ("heart_rate_bpm", 72.0), ("steps", 120.0), ("body_temp_c", 36.6)]


def test_env_accepts_any_well_formed_metric_name():
    _, parsed = parse("env", {"t": T0.isoformat(), "soil_moisture_pct": 31.5, "soil_temp_c": -2})
    assert [(r.metric, r.value) for r in parsed.rows_by_table[MEASUREMENTS]] == [
        ("soil_moisture_pct", 31.5), ("soil_temp_c", -2.0)]


def test_epoch_seconds_are_read_as_utc():
    _, parsed = parse("hems", {"t": T0.timestamp(), "power_w": 1})
    assert parsed.rows_by_table[ENERGY][0].time == T0


@pytest.mark.parametrize("text", ["2026-11-24T00:59:00.250Z", "2026-11-24t00:59:00.250z",
                                  "2026-11-24T00:59:00.250+00:00", "2026-11-23T19:59:00.250-05:00"])
def test_rfc3339_offsets_and_z_are_read(text):
    _, parsed = parse("hems", {"t": text, "power_w": 1})
    assert parsed.rows_by_table[ENERGY][0].time == T0


def test_late_data_up_to_30_days_old_is_accepted():
    _, parsed = parse("hems", {"t": (NOW - timedelta(days=29, hours=23)).isoformat(), "power_w": 1})
    assert parsed.reading_count == 1


def test_times_up_to_5_minutes_ahead_are_accepted():
    _, parsed = parse("hems", {"t": (NOW + timedelta(minutes=4, seconds=59)).isoformat(), "power_w": 1})
    assert parsed.reading_count == 1


def test_backfills_may_lift_the_age_limit():
    _, parsed = parse("hems", {"t": "2014-12-01T10:00:00+09:00", "power_w": 1}, max_age=None)
    assert parsed.rows_by_table[ENERGY][0].time == datetime(2014, 12, 1, 1, 0, tzinfo=UTC)


def test_readings_at_the_same_time_with_different_offsets_are_duplicates():
    with pytest.raises(Rejected) as err:
        parse("hems", {"batch": [{"t": "2026-11-24T00:59:00Z", "power_w": 1},
                                 {"t": "2026-11-24T09:59:00+09:00", "power_w": 2}]})
    assert err.value.reason == "duplicate_time"


def test_one_bad_reading_rejects_the_whole_batch():
    batch = [{"t": (T0 + timedelta(seconds=i)).isoformat(), "power_w": 100} for i in range(5)]
    batch[3]["power_w"] = 1e9
    with pytest.raises(Rejected) as err:
        parse("hems", {"batch": batch})
    assert err.value.reason == "out_of_range"
