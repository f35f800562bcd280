"""Gateway adapters' pure parts: ECHONET Lite properties, GNSS (gpsd, NMEA), BLE heart rate, pushed health data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityos.ingest.gateway.adapters.ble_heart_rate import parse_measurement
from cityos.ingest.gateway.adapters.echonet import meter_metrics
from cityos.ingest.gateway.adapters.health_http import Refused, observations
from cityos.ingest.gateway.config import ConfigError, parse_config
from cityos.ingest.gateway.echonet import codec
from cityos.ingest.gateway.echonet import properties as p
from cityos.ingest.gateway.vehicle.gnss import Fix, Motion, from_rmc, from_tpv, nmea_checksum_ok


def test_no_measurement_decodes_to_none():
    assert p.unsigned(bytes.fromhex("FFFFFFFE")) is None
    assert p.signed(bytes.fromhex("7FFFFFFE")) is None
    assert p.unsigned(bytes.fromhex("000004D2")) == 1234


def test_cumulative_energy_uses_coefficient_and_unit():
    assert p.meter_scale(bytes.fromhex("00000002"), bytes([0x01])) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="unknown cumulative-energy unit"):
        p.meter_scale(None, bytes([0x07]))


def test_a_counter_wrap_keeps_the_total_growing():
    counter = p.CounterUnwrap(digits=6)
    assert [counter.update(v) for v in (999_990, 999_999, 5, 20)] == [999_990, 999_999, 1_000_005, 1_000_020]


def test_a_small_step_back_is_not_taken_for_a_wrap():
    counter = p.CounterUnwrap(digits=6)
    counter.update(500_000)
    assert counter.update(499_000) is None


def test_meter_metrics_from_raw_properties():
    props = {p.METER_INSTANT_POWER: (1500).to_bytes(4, "big", signed=True),
             p.METER_INSTANT_CURRENT: bytes.fromhex("0064FFF6"),  # R 10.0 A, T -1.0 A
             p.METER_UNIT: bytes([0x01]), p.METER_CUMULATIVE_NORMAL: (123456).to_bytes(4, "big"),
             p.METER_CUMULATIVE_REVERSE: bytes.fromhex("FFFFFFFE")}
    assert meter_metrics(props, {}) == {"power_w": 1500.0, "current_r_a": 10.0, "current_t_a": -1.0,
                                        "import_kwh": 12345.6}


@given(st.integers(0, 0xFFFF), st.sampled_from([codec.GET, codec.GET_RES, codec.INF]),
       st.lists(st.tuples(st.integers(0x80, 0xFF), st.binary(max_size=8)), max_size=6))
def test_frames_survive_encode_and_decode(tid, esv, props):
    frame = codec.Frame(tid, (0x05, 0xFF, 0x01), (0x02, 0x88, 0x01), esv, props)
    decoded = codec.decode(codec.encode(frame))
    assert (decoded.tid, decoded.esv, decoded.props) == (tid, esv, props)


def test_gpsd_tpv_report_becomes_a_fix():
    fix = from_tpv('{"class":"TPV","mode":3,"time":"2026-01-10T08:00:00.000Z","lat":37.49,"lon":139.93,'
                   '"speed":10.0,"track":90.0,"eph":4.5}')
    assert fix == Fix(1768032000.0, 37.49, 139.93, 36.0, 90.0, 4.5)
    assert from_tpv('{"class":"TPV","mode":1}') is None
    assert from_tpv("not json") is None


def test_nmea_rmc_with_a_good_checksum_becomes_a_fix():
    sentence = "$GPRMC,080000.00,A,3729.4000,N,13955.8000,E,10.0,90.0,100126,,,A*"
    checksum = 0
    for char in sentence[1:-1]:
        checksum ^= ord(char)
    fix = from_rmc(f"{sentence}{checksum:02X}")
    assert fix is not None and fix.lat == pytest.approx(37.49) and fix.speed_kmh == pytest.approx(18.52)
    assert not nmea_checksum_ok(f"{sentence}00" if checksum else f"{sentence}01")


def test_acceleration_comes_from_successive_speeds():
    motion = Motion()
    assert motion.update(Fix(0, 37.5, 139.9, 54.0)) is None
    assert motion.update(Fix(1, 37.5, 139.9, 18.0)) == pytest.approx(-10.0)


def test_ble_heart_rate_in_8_and_16_bits():
    assert parse_measurement(bytes([0x00, 72])) == 72
    assert parse_measurement(bytes([0x01, 0x2C, 0x01])) == 300
    assert parse_measurement(b"\x00") is None


def test_pushed_health_readings_are_checked_against_the_contract():
    good = observations({"batch": [{"t": "2026-01-10T08:00:00Z", "heart_rate_bpm": 72}]})
    assert good[0].metrics == {"heart_rate_bpm": 72}
    with pytest.raises(Refused, match="heart_rate_bpm: out_of_range"):
        observations({"t": "2026-01-10T08:00:00Z", "heart_rate_bpm": 400})
    with pytest.raises(Refused, match="observation time"):
        observations({"heart_rate_bpm": 72})


def test_config_errors_name_the_field_and_the_adapter():
    with pytest.raises(ConfigError) as err:
        parse_config({"device_id": "Bad Id", "broker_url": "http://x",
                      "adapters": [{"type": "vehicle", "interval_s": 60, "gpsd": "127.0.0.1:2947"}]})
    text = str(err.value)
    assert "device_id: must match" in text and "broker_url: must be mqtt://" in text
    assert "adapters[0] (vehicle).interval_s" in text


def test_the_gateway_imports_nothing_of_the_server_side_and_the_contract_for_its_rules():
    import subprocess
    import sys

    code = ("import sys, cityos.ingest.gateway.cli, cityos.ingest.gateway.runner\n"
            "from cityos.ingest.gateway.adapters import ADAPTERS, module\n"
            "[module(k) for k in ADAPTERS]\n"
            "heavy = {'fastapi', 'psycopg', 'psycopg_pool', 'geopandas', 'shapely', 'pyproj', 'sqlalchemy',\n"
            "         'pandas', 'uvicorn', 'starlette', 'orjson'}\n"
            "ours = {'.'.join(m.split('.')[:3]) for m in sys.modules if m.startswith('cityos.')}\n"
            "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
            "print(sorted(m for m in ours if not m.startswith('cityos.ingest.gateway')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    heavy, ours = out.splitlines()
    assert heavy == "[]"
    assert ours == "['cityos.ingest', 'cityos.ingest.contract']"  # the payload contract, nothing else


def _nmea(body: str) -> str:
    checksum = 0
    for char in body:
        checksum ^= ord(char)
    return f"${body}*{checksum:02X}"


def test_gga_gives_the_fix_of_an_epoch_whose_rmc_is_still_void_as_gpsd_does():
    """A receiver's power-up (constructed in the MTK-3301's pattern): void sentences at 90 N with a 1980
    date, then one epoch where GGA has a fix while RMC still says V, then RMC A."""
    from cityos.ingest.gateway.vehicle.gnss import NmeaFixes

    log = [
        _nmea("GPGGA,235947.000,9000.0000,N,00000.0000,E,0,0,,,M,,M,,"),
        _nmea("GPRMC,235947.000,V,9000.0000,N,00000.0000,E,0.00,0.00,050180,,,N"),
        _nmea("GPGGA,092204.000,3729.6820,N,13955.7800,E,1,04,2.1,212.0,M,38.0,M,,"),
        _nmea("GPRMC,092204.000,V,3729.6820,N,13955.7800,E,0.00,0.00,241126,,,N"),
        _nmea("GPGGA,092205.000,3729.6830,N,13955.7810,E,1,05,1.8,212.0,M,38.0,M,,"),
        _nmea("GPRMC,092205.000,A,3729.6830,N,13955.7810,E,10.00,90.00,241126,,,A"),
        _nmea("GPGGA,092206.000,3729.6840,N,13955.7820,E,1,05,1.8,212.0,M,38.0,M,,"),
    ]
    nmea = NmeaFixes()
    fixes = [fix for sentence in log for fix in nmea.feed(sentence)] + nmea.flush()
    assert [datetime.fromtimestamp(f.t, UTC).strftime("%H:%M:%S") for f in fixes] == ["09:22:04", "09:22:05",
                                                                                      "09:22:06"]
    assert round(fixes[0].lat, 6) == 37.494700 and fixes[0].speed_kmh is None  # from GGA
    assert fixes[1].speed_kmh == pytest.approx(18.52)  # the RMC of its epoch, not the GGA
    assert datetime.fromtimestamp(fixes[0].t, UTC).date().isoformat() == "2026-11-24"  # date from the void RMC


def test_a_cumulative_value_beyond_the_meters_declared_digits_is_refused_as_a_counter_fault():
    """9,999,999 from a meter that declares 6 digits (0xD7) is not a reading: the counter is broken."""
    unwrap: dict[int, p.CounterUnwrap] = {}
    base = {p.METER_DIGITS: bytes([6]), p.METER_COEFFICIENT: (1).to_bytes(4, "big"), p.METER_UNIT: bytes([0x01])}
    good = meter_metrics({**base, p.METER_CUMULATIVE_NORMAL: (123_456).to_bytes(4, "big")}, unwrap)
    bad = meter_metrics({**base, p.METER_CUMULATIVE_NORMAL: (9_999_999).to_bytes(4, "big")}, unwrap)
    after = meter_metrics({**base, p.METER_CUMULATIVE_NORMAL: (123_460).to_bytes(4, "big")}, unwrap)
    assert good["import_kwh"] == 12345.6
    assert "import_kwh" not in bad
    assert after["import_kwh"] == 12346.0  # the fault did not move the counter (no false wrap)
    assert unwrap[p.METER_CUMULATIVE_NORMAL].faults == 1


def test_the_meters_declared_digits_override_a_saved_counter_state():
    unwrap = {p.METER_CUMULATIVE_NORMAL: p.CounterUnwrap(digits=8, last=100)}
    meter_metrics({p.METER_DIGITS: bytes([6]), p.METER_CUMULATIVE_NORMAL: (9_999_999).to_bytes(4, "big")}, unwrap)
    assert unwrap[p.METER_CUMULATIVE_NORMAL].state() == {"digits": 6, "last": 100, "wraps": 0, "faults": 1}
