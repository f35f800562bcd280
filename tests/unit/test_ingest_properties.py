"""Property tests of the parsers: nothing but Rejected escapes, and valid readings round-trip."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityos.ingest import normalise
from cityos.ingest.catalog import HEMS
from cityos.ingest.normalise import parse_message
from cityos.ingest.rows import ENERGY, VEHICLES, Rejected

NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
DOMAINS = ("hems", "vehicle", "health", "env")
STREAMS = ("readings", "senml", "d4c")
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)
field_names = st.sampled_from(["t", "power_w", "lat", "lon", "role", "blade_down", "sleep_stage",
                               "pillbox_open", "heart_rate_bpm", "soil_temp_c", "n", "v", "vs", "vb", "bn",
                               "bt", "bu", "u", "s",
                               "batch", "measurement_date", "measurement_hour", "latitude", "longitude"])
times = st.one_of(st.floats(allow_nan=False), st.integers(), st.text(max_size=30),
                  st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
                  st.integers(-10**6, 10**6).map(lambda s: (NOW + timedelta(seconds=s)).isoformat()))
readingish = st.dictionaries(field_names, st.one_of(json_values, times), max_size=6)
documents = st.one_of(json_values, readingish, st.lists(readingish, max_size=4),
                      st.builds(lambda b: {"batch": b}, st.lists(readingish, max_size=4)))


def verdict(topic: str, payload: bytes) -> object:
    try:
        _, parsed = parse_message(topic, payload, now=NOW)
    except Rejected as rejected:
        return rejected.reason
    return parsed


@FAST
@given(st.sampled_from(DOMAINS), st.sampled_from(STREAMS), st.binary(max_size=200))
def test_arbitrary_bytes_raise_nothing_but_rejected(domain, stream, payload):
    verdict(f"cityos/v1/{domain}/dev-001/{stream}", payload)


@FAST
@given(st.sampled_from(DOMAINS), st.sampled_from(STREAMS), documents)
def test_arbitrary_json_raises_nothing_but_rejected(domain, stream, document):
    verdict(f"cityos/v1/{domain}/dev-001/{stream}", json.dumps(document).encode())


@FAST
@given(st.text(max_size=80))
def test_arbitrary_topics_raise_nothing_but_rejected(topic):
    verdict(topic, b'{"t": 1795481940, "power_w": 1}')


@FAST
@given(st.binary(max_size=120) | documents.map(lambda d: json.dumps(d).encode()))
def test_the_verdict_does_not_depend_on_orjson(payload):
    topic = "cityos/v1/hems/dev-001/readings"
    fast = verdict(topic, payload)
    saved, normalise.orjson = normalise.orjson, None
    try:
        slow = verdict(topic, payload)
    finally:
        normalise.orjson = saved
    assert fast == slow


offsets = st.integers(-12 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
instants = st.integers(-30 * 86400 * 10**6 + 1, 300 * 10**6).map(lambda us: NOW + timedelta(microseconds=us))


def _metric_values(name: str) -> st.SearchStrategy[float]:
    spec = HEMS[name]
    return st.floats(spec.low, spec.high, allow_nan=False) | st.integers(int(spec.low), int(spec.high))


hems_readings = st.fixed_dictionaries({}, optional={name: _metric_values(name) for name in HEMS}).filter(bool)


@FAST
@given(st.lists(st.tuples(instants, offsets, hems_readings), min_size=1, max_size=20,
                unique_by=lambda r: r[0]))
def test_valid_hems_readings_round_trip(readings):
    batch = [{"t": t.astimezone(tz).isoformat(), **values} for t, tz, values in readings]
    payload = json.dumps({"batch": batch}).encode()
    _, parsed = parse_message("cityos/v1/hems/dev-001/readings", payload, now=NOW)
    expected = [(t, name, float(value)) for t, _, values in readings for name, value in values.items()]
    assert [(r.time, r.metric, r.value) for r in parsed.rows_by_table[ENERGY]] == expected
    assert parsed.reading_count == len(readings)


positions = st.tuples(st.floats(-89.9, 89.9), st.floats(-180, 180)).filter(lambda p: p != (0.0, 0.0))
vehicle_extras = st.fixed_dictionaries({}, optional={
    "speed_kmh": st.floats(0, 250), "heading_deg": st.floats(0, 360), "gps_error_m": st.floats(0, 10_000),
    "accel_long": st.floats(-50, 50), "accel_trans": st.floats(-50, 50), "accel_vert": st.floats(-50, 50),
    "role": st.sampled_from(["snowplow", "patrol_car", "official_car", "bus"]), "blade_down": st.booleans()})


@FAST
@given(instants, offsets, positions, vehicle_extras)
def test_valid_vehicle_readings_round_trip(t, tz, position, extras):
    lat, lon = position
    reading = {"t": t.astimezone(tz).isoformat(), "lat": lat, "lon": lon, **extras}
    _, parsed = parse_message("cityos/v1/vehicle/dev-001/readings", json.dumps(reading).encode(), now=NOW)
    row = parsed.rows_by_table[VEHICLES][0]
    assert (row.time, row.lat, row.lon) == (t, lat, lon)
    assert {k: getattr(row, k) for k in extras} == extras


@FAST
@given(st.lists(st.tuples(st.integers(-3600, 0), st.sampled_from(sorted(HEMS)), st.floats(0, 100)),
                min_size=1, max_size=30, unique_by=lambda r: (r[0], r[1])))
def test_valid_senml_records_round_trip(records):
    pack = [{"n": name, "v": value, "t": t} for t, name, value in records]
    _, parsed = parse_message("cityos/v1/hems/dev-001/senml", json.dumps(pack).encode(), now=NOW)
    got = sorted((r.time, r.metric, r.value) for r in parsed.rows_by_table[ENERGY])
    assert got == sorted((NOW + timedelta(seconds=t), name, value) for t, name, value in records)
    assert all(math.isfinite(r.value) for r in parsed.rows_by_table[ENERGY])


JST = timezone(timedelta(hours=9))


@FAST
@given(st.integers(-30 * 86400 + 1, 300), positions, st.floats(-5, 5), st.booleans())
def test_valid_d4c_records_round_trip(seconds, position, accel_g, as_text):
    t = NOW + timedelta(seconds=seconds)
    lat, lon = position
    local = t.astimezone(JST)
    record = {"car_name": "car", "measurement_date": local.strftime("%Y/%m/%d"),
              "measurement_hour": local.strftime("%H:%M:%S"), "latitude": repr(lat) if as_text else lat,
              "longitude": repr(lon) if as_text else lon, "accel_y_longitudinal": accel_g}
    _, parsed = parse_message("cityos/v1/vehicle/car-001/d4c", json.dumps(record).encode(), now=NOW)
    row = parsed.rows_by_table[VEHICLES][0]
    assert (row.time, row.lat, row.lon, row.role) == (t, lat, lon, "official_car")
    assert row.accel_long == accel_g * 9.80665


@FAST
@given(st.text(max_size=12))
def test_arbitrary_d4c_number_texts_raise_nothing_but_rejected(text):
    record = {"measurement_date": "2026/11/24", "measurement_hour": "09:59:00", "latitude": text,
              "longitude": 139.9}
    verdict("cityos/v1/vehicle/car-001/d4c", json.dumps(record).encode())
