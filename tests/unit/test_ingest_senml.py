"""Stream ``senml`` (RFC 8428): names, base fields, relative times and units."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from cityos.ingest.normalise import parse_message
from cityos.ingest.rows import ENERGY, HEALTH, MEASUREMENTS, VEHICLES, MetricRow, Rejected, VehicleRow

NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 24, 0, 59, tzinfo=UTC)


def parse(domain: str, pack: object):
    return parse_message(f"cityos/v1/{domain}/dev-001/senml", json.dumps(pack).encode(), now=NOW)[1]


def rejection(domain: str, pack: object) -> str:
    with pytest.raises(Rejected) as err:
        parse(domain, pack)
    return err.value.reason


def test_the_base_name_is_stripped_from_the_metric_name():
    pack = [{"bn": "urn:dev:ow:10e2073a01080063:", "bt": T0.timestamp(), "n": "power_w", "v": 950}]
    parsed = parse("hems", pack)
    assert parsed.rows_by_table == {ENERGY: [MetricRow(T0, "dev-001", "power_w", 950.0, None)]}


def test_a_full_name_without_base_name_names_its_last_segment():
    parsed = parse("hems", [{"n": "urn:dev:mac:0024befffe804ff1:power_w", "t": T0.timestamp(), "v": 1}])
    assert parsed.rows_by_table[ENERGY][0].metric == "power_w"


def test_a_base_name_alone_names_the_metric():
    parsed = parse("hems", [{"bn": "home/solar_w", "t": T0.timestamp(), "v": 10}])
    assert parsed.rows_by_table[ENERGY][0].metric == "solar_w"


def test_a_record_without_time_is_now():
    parsed = parse("hems", [{"n": "power_w", "v": 1}])
    assert parsed.rows_by_table[ENERGY][0].time == NOW


def test_small_times_are_relative_to_now():
    parsed = parse("hems", [{"n": "power_w", "v": 1, "t": -60}])
    assert parsed.rows_by_table[ENERGY][0].time == NOW - timedelta(seconds=60)


def test_base_time_plus_time_is_absolute():
    parsed = parse("hems", [{"bt": T0.timestamp() - 10, "n": "power_w", "v": 1, "t": 10}])
    assert parsed.rows_by_table[ENERGY][0].time == T0


def test_base_fields_apply_to_later_records():
    parsed = parse("hems", [{"bn": "urn:dev:x:", "bt": T0.timestamp(), "bu": "W", "bv": 100, "n": "power_w",
                             "v": 1}, {"n": "solar_w", "v": 2, "t": 1}])
    assert [(r.metric, r.value, r.time) for r in parsed.rows_by_table[ENERGY]] == [
        ("power_w", 101.0, T0), ("solar_w", 102.0, T0 + timedelta(seconds=1))]


def test_records_at_one_time_form_one_reading():
    parsed = parse("hems", [{"bt": T0.timestamp(), "n": "power_w", "v": 1}, {"n": "solar_w", "v": 2},
                            {"n": "power_w", "v": 3, "t": 1}])
    assert parsed.reading_count == 2


@pytest.mark.parametrize(("metric", "unit", "value", "stored"), [
    ("power_w", "kW", 1.5, 1500.0),
    ("import_kwh", "Wh", 2500, 2.5),
    ("battery_soc_pct", "%EL", 80, 80.0),
])
def test_units_are_converted_to_the_catalog_unit(metric, unit, value, stored):
    parsed = parse("hems", [{"n": metric, "u": unit, "v": value, "t": T0.timestamp()}])
    assert parsed.rows_by_table[ENERGY][0].value == pytest.approx(stored)


def test_speed_in_metres_per_second_is_stored_in_kmh():
    parsed = parse("vehicle", [{"bt": T0.timestamp(), "n": "lat", "u": "lat", "v": 37.5},
                               {"n": "lon", "u": "lon", "v": 139.9}, {"n": "speed_kmh", "u": "m/s", "v": 10}])
    assert parsed.rows_by_table[VEHICLES][0].speed_kmh == pytest.approx(36.0)


def test_vehicle_records_at_one_time_become_one_position():
    parsed = parse("vehicle", [{"bn": "urn:dev:plow:", "bt": T0.timestamp(), "n": "lat", "v": 37.5},
                               {"n": "lon", "v": 139.9}, {"n": "role", "vs": "snowplow"},
                               {"n": "blade_down", "vb": False}])
    assert parsed.rows_by_table == {VEHICLES: [VehicleRow(
        T0, "dev-001", 139.9, 37.5, None, None, None, None, None, None, "snowplow", False)]}


def test_string_values_carry_choices():
    parsed = parse("health", [{"n": "sleep_stage", "vs": "rem", "t": T0.timestamp()},
                              {"n": "heart_rate_bpm", "u": "beat/min", "v": 58, "t": T0.timestamp()}])
    assert parsed.rows_by_table[HEALTH] == [MetricRow(T0, "dev-001", "sleep_stage", 3.0, "rem"),
                                            MetricRow(T0, "dev-001", "heart_rate_bpm", 58.0, None)]


def test_a_sum_is_a_value():
    parsed = parse("hems", [{"n": "import_kwh", "u": "kWh", "s": 123.4, "t": T0.timestamp()}])
    assert parsed.rows_by_table[ENERGY][0].value == 123.4


def test_env_units_are_not_checked():
    parsed = parse("env", [{"n": "soil_temp", "u": "Cel", "v": 4.5, "t": T0.timestamp()}])
    assert parsed.rows_by_table[MEASUREMENTS][0].value == 4.5


def test_a_wrong_unit_is_bad_unit():
    assert rejection("health", [{"n": "body_temp_c", "u": "degF", "v": 98.6}]) == "bad_unit"


def test_a_unit_on_a_choice_is_bad_unit():
    assert rejection("health", [{"n": "sleep_stage", "u": "Cel", "vs": "rem"}]) == "bad_unit"


def test_data_values_are_bad_type():
    assert rejection("hems", [{"n": "power_w", "vd": "AAEC"}]) == "bad_type"


def test_a_string_in_v_is_bad_type():
    assert rejection("hems", [{"n": "power_w", "v": "12"}]) == "bad_type"


def test_a_record_without_value_is_bad_shape():
    assert rejection("hems", [{"n": "power_w"}]) == "bad_shape"


def test_a_field_outside_rfc8428_is_unknown_field():
    assert rejection("hems", [{"n": "power_w", "v": 1, "foo_": 1}]) == "unknown_field"


def test_a_name_outside_the_catalog_is_unknown_field():
    assert rejection("hems", [{"n": "temperature", "v": 1}]) == "unknown_field"


def test_the_same_metric_twice_at_one_time_is_duplicate_time():
    assert rejection("hems", [{"n": "power_w", "v": 1}, {"n": "power_w", "v": 2}]) == "duplicate_time"


def test_a_newer_senml_version_is_bad_shape():
    assert rejection("hems", [{"bver": 11, "n": "power_w", "v": 1}]) == "bad_shape"


def test_a_pack_must_be_an_array():
    assert rejection("hems", {"n": "power_w", "v": 1}) == "bad_shape"
