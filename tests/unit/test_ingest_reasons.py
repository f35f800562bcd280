"""Every reason code the parser gives has a message that produces it, and the contract documents them all."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cityos.ingest.normalise import MAX_PAYLOAD, parse_message
from cityos.ingest.rows import REASONS, WORKER_REASONS, Rejected

NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
T = "2026-11-24T09:59:00+09:00"
HEMS = "cityos/v1/hems/home-0001/readings"
CONTRACT = Path(__file__).resolve().parents[2] / "ingest" / "CONTRACT.md"


def doc(document: object) -> bytes:
    return json.dumps(document).encode()


#: reason -> (topic, payload, client_username)
CASES: dict[str, tuple[str, bytes, str | None]] = {
    "bad_topic": ("cityos/v1/hems/HOME-0001/readings", doc({"t": T, "power_w": 1}), None),
    "topic_device_mismatch": (HEMS, doc({"t": T, "power_w": 1}), "home-0002"),
    "too_large": (HEMS, b" " * (MAX_PAYLOAD + 1), None),
    "unsupported_format": ("cityos/v1/hems/home-0001/xml", b"<power>1</power>", None),
    "not_utf8": (HEMS, b'{"t": "\xff"}', None),
    "bad_json": (HEMS, b'{"t": "2026-11-24T09:59:00+09:00", "power_w": }', None),
    "bad_shape": (HEMS, doc([{"t": T, "power_w": 1}]), None),
    "batch_too_large": (HEMS, doc({"batch": [{}] * 10_001}), None),
    "missing_time": (HEMS, doc({"power_w": 1}), None),
    "bad_time": (HEMS, doc({"t": "2026-11-24T09:59:00", "power_w": 1}), None),
    "future_time": (HEMS, doc({"t": (NOW + timedelta(minutes=6)).isoformat(), "power_w": 1}), None),
    "too_old": (HEMS, doc({"t": (NOW - timedelta(days=31)).isoformat(), "power_w": 1}), None),
    "duplicate_time": (HEMS, doc({"batch": [{"t": T, "power_w": 1}, {"t": T, "power_w": 2}]}), None),
    "unknown_field": (HEMS, doc({"t": T, "voltage_v": 101}), None),
    "bad_type": (HEMS, doc({"t": T, "power_w": "1200"}), None),
    "non_finite": (HEMS, b'{"t": "2026-11-24T09:59:00+09:00", "power_w": NaN}', None),
    "out_of_range": (HEMS, doc({"t": T, "power_w": 60_000}), None),
    "bad_unit": ("cityos/v1/hems/home-0001/senml", doc([{"n": "power_w", "u": "Cel", "v": 1}]), None),
    "void_fix": ("cityos/v1/vehicle/plow-0001/readings", doc({"t": T, "lat": 90.0, "lon": 0.0}), None),
}


@pytest.mark.parametrize("reason", sorted(CASES))
def test_reason_is_given_for_its_message(reason):
    topic, payload, user = CASES[reason]
    with pytest.raises(Rejected) as err:
        parse_message(topic, payload, now=NOW, client_username=user)
    assert err.value.reason == reason


def test_every_parser_reason_has_a_case():
    assert set(CASES) == set(REASONS) - WORKER_REASONS


def test_the_contract_documents_every_reason():
    text = CONTRACT.read_text(encoding="utf-8")
    assert [code for code in REASONS if f"| `{code}` |" not in text] == []


@pytest.mark.parametrize("payload", [b'{"t": 1795482000, "power_w": 1e999}',
                                     b'{"t": 1795482000, "power_w": -Infinity}'])
def test_infinite_numbers_are_non_finite(payload):
    with pytest.raises(Rejected) as err:
        parse_message(HEMS, payload, now=NOW)
    assert err.value.reason == "non_finite"


def test_a_boolean_where_a_number_belongs_is_bad_type():
    with pytest.raises(Rejected) as err:
        parse_message(HEMS, doc({"t": T, "power_w": True}), now=NOW)
    assert err.value.reason == "bad_type"


def test_epoch_milliseconds_are_future_time():
    with pytest.raises(Rejected) as err:
        parse_message(HEMS, doc({"t": NOW.timestamp() * 1000, "power_w": 1}), now=NOW)
    assert err.value.reason == "future_time"


def test_a_reading_without_metrics_is_bad_shape():
    with pytest.raises(Rejected) as err:
        parse_message(HEMS, doc({"t": T}), now=NOW)
    assert err.value.reason == "bad_shape"


def test_a_vehicle_reading_without_position_is_bad_shape():
    with pytest.raises(Rejected) as err:
        parse_message("cityos/v1/vehicle/plow-0001/readings", doc({"t": T, "speed_kmh": 3}), now=NOW)
    assert err.value.reason == "bad_shape"


@pytest.mark.parametrize(("lat", "lon"), [(90.0, 139.9), (-90.0, 0.0), (0.0, 0.0)])
def test_bogus_receiver_positions_are_void_fix(lat, lon):
    with pytest.raises(Rejected) as err:
        parse_message("cityos/v1/vehicle/plow-0001/readings", doc({"t": T, "lat": lat, "lon": lon}), now=NOW)
    assert err.value.reason == "void_fix"


def test_an_unknown_role_is_out_of_range():
    with pytest.raises(Rejected) as err:
        parse_message("cityos/v1/vehicle/plow-0001/readings",
                      doc({"t": T, "lat": 37.5, "lon": 139.9, "role": "taxi"}), now=NOW)
    assert err.value.reason == "out_of_range"


def test_the_topic_is_checked_before_the_size():
    with pytest.raises(Rejected) as err:
        parse_message("cityos/v1/hems/home-0001", b" " * (MAX_PAYLOAD + 1), now=NOW)
    assert err.value.reason == "bad_topic"


def test_a_rejection_survives_pickling():
    import pickle

    copy = pickle.loads(pickle.dumps(Rejected("bad_json", "line 1")))
    assert (copy.reason, copy.detail) == ("bad_json", "line 1")
