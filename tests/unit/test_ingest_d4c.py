"""Stream ``d4c``: DATA for CITIZEN official-car records (JST times, accelerations in G)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from cityos.ingest.normalise import parse_message
from cityos.ingest.rows import VEHICLES, Rejected, VehicleRow

NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
G = 9.80665


def record(**changes) -> dict:
    base = {"car_name": "公用車A", "measurement_date": "2026/11/24", "measurement_hour": "09:58:30",
            "gps_error_meter": 5, "latitude": 37.4945, "longitude": 139.9298,
            "accel_x_transverse": 0.1, "accel_y_longitudinal": -0.25}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def parse(document: object, domain: str = "vehicle", **kwargs):
    payload = json.dumps(document, ensure_ascii=False).encode()
    return parse_message(f"cityos/v1/{domain}/car-0001/d4c", payload, now=NOW, **kwargs)[1]


def rejection(document: object, domain: str = "vehicle") -> str:
    with pytest.raises(Rejected) as err:
        parse(document, domain)
    return err.value.reason


def test_a_record_becomes_an_official_car_position_in_utc_and_m_s2():
    parsed = parse(record())
    assert parsed.rows_by_table == {VEHICLES: [VehicleRow(
        datetime(2026, 11, 24, 0, 58, 30, tzinfo=UTC), "car-0001", 139.9298, 37.4945, None, None, 5.0,
        -0.25 * G, 0.1 * G, None, "official_car", None)]}


def test_an_array_of_records_becomes_one_row_each():
    parsed = parse([record(measurement_hour="09:58:30"), record(measurement_hour="09:58:31")])
    assert parsed.reading_count == 2
    assert len(parsed.rows_by_table[VEHICLES]) == 2


@pytest.mark.parametrize(("date", "hour"), [("2026-11-24", "09:58:30"), ("2026/11/24", "9:58:30"),
                                            ("２０２６／１１／２４", "０９：５８：３０")])
def test_date_and_hour_variants_are_read(date, hour):
    parsed = parse(record(measurement_date=date, measurement_hour=hour))
    assert parsed.rows_by_table[VEHICLES][0].time == datetime(2026, 11, 24, 0, 58, 30, tzinfo=UTC)


def test_numeric_strings_are_read():
    parsed = parse(record(latitude=" 37.4945", longitude="139.9298", gps_error_meter="５"))
    row = parsed.rows_by_table[VEHICLES][0]
    assert (row.lat, row.lon, row.gps_error_m) == (37.4945, 139.9298, 5.0)


def test_blank_optional_values_are_none():
    row = parse(record(gps_error_meter="", accel_x_transverse=None))
    assert row.rows_by_table[VEHICLES][0].gps_error_m is None
    assert row.rows_by_table[VEHICLES][0].accel_trans is None


def test_accelerations_may_be_declared_in_m_s2():
    row = parse(record(accel_unit="m/s2")).rows_by_table[VEHICLES][0]
    assert (row.accel_long, row.accel_trans) == (-0.25, 0.1)


def test_an_unknown_accel_unit_is_bad_unit():
    assert rejection(record(accel_unit="gal")) == "bad_unit"


def test_old_open_data_is_accepted_when_the_age_limit_is_lifted():
    parsed = parse(record(measurement_date="2014/12/01", measurement_hour="10:23:45"), max_age=None)
    assert parsed.rows_by_table[VEHICLES][0].time == datetime(2014, 12, 1, 1, 23, 45, tzinfo=UTC)


def test_old_open_data_is_too_old_for_live_ingest():
    assert rejection(record(measurement_date="2014/12/01")) == "too_old"


def test_blank_coordinates_are_void_fix():
    assert rejection(record(latitude="")) == "void_fix"


def test_an_impossible_date_is_bad_time():
    assert rejection(record(measurement_date="2026/02/30")) == "bad_time"


def test_a_missing_hour_is_missing_time():
    assert rejection(record(measurement_hour=...)) == "missing_time"


def test_a_non_numeric_string_is_bad_type():
    assert rejection(record(latitude="north")) == "bad_type"


def test_a_field_outside_the_format_is_unknown_field():
    assert rejection(record(speed=30)) == "unknown_field"


def test_d4c_is_offered_for_vehicles_only():
    assert rejection(record(), domain="hems") == "unsupported_format"


def test_the_portals_json_naming_measurement_datetime_and_ms_is_accepted():
    portal = record(measurement_date=..., measurement_hour=..., measurement_datetime="2026-11-24 09:58:30",
                    measurement_ms=250)
    row = parse(portal).rows_by_table[VEHICLES][0]
    assert row.time == datetime(2026, 11, 24, 0, 58, 30, 250000, tzinfo=UTC)
    iso = record(measurement_date=..., measurement_hour=..., measurement_datetime="2026/11/24T09:58:30+09:00")
    assert parse(iso).rows_by_table[VEHICLES][0].time == datetime(2026, 11, 24, 0, 58, 30, tzinfo=UTC)


@pytest.mark.parametrize("changes", [{"measurement_datetime": "2026-11-24 09:58:30"},
                                     {"measurement_ms": 1000}, {"measurement_ms": 2.5},
                                     {"measurement_date": ..., "measurement_hour": ...,
                                      "measurement_datetime": "yesterday"}])
def test_conflicting_or_unreadable_portal_times_are_refused_as_bad_time(changes):
    assert rejection(record(**changes)) == "bad_time"
