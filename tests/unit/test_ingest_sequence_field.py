"""The optional payload field ``sn`` (a reading's sequence number in its stream): read, checked, never a metric."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from cityos.ingest.gateway.payload import check_metric
from cityos.ingest.normalise import parse_message
from cityos.ingest.rows import Rejected

NOW = datetime.now(UTC)


def _parse(domain: str, readings: list[dict]):
    payload = json.dumps({"batch": readings}).encode()
    return parse_message(f"cityos/v1/{domain}/dev-001/readings", payload, now=NOW)[1]


def _t(n: int) -> str:
    return (NOW - timedelta(minutes=n)).isoformat()


def test_sequence_numbers_are_read_and_stored_nowhere_as_metrics():
    parsed = _parse("env", [{"t": _t(1), "sn": 7, "no2_ppb": 3}, {"t": _t(2), "sn": 8, "no2_ppb": 4}])
    assert parsed.sequences == [7, 8]
    assert {r.metric for rows in parsed.rows_by_table.values() for r in rows} == {"no2_ppb"}


def test_readings_without_sequence_numbers_keep_working():
    parsed = _parse("hems", [{"t": _t(1), "power_w": 100}])
    assert parsed.sequences == [] and parsed.row_count == 1


def test_a_vehicle_reading_may_carry_one():
    assert _parse("vehicle", [{"t": _t(1), "sn": 1, "lat": 37.5, "lon": 139.9}]).sequences == [1]


@pytest.mark.parametrize(("sn", "reason"), [("7", "bad_type"), (1.5, "bad_type"), (True, "bad_type"),
                                            (0, "out_of_range"), (2**63, "out_of_range")])
def test_a_bad_sequence_number_is_refused_with_a_reason(sn, reason):
    with pytest.raises(Rejected) as caught:
        _parse("hems", [{"t": _t(1), "sn": sn, "power_w": 100}])
    assert caught.value.reason == reason


def test_a_reading_with_only_a_time_and_a_sequence_number_has_no_metric():
    with pytest.raises(Rejected) as caught:
        _parse("hems", [{"t": _t(1), "sn": 3}])
    assert caught.value.reason == "bad_shape"


def test_the_gateway_never_takes_sn_as_a_metric_of_an_adapter():
    assert check_metric("env", "sn", 3) == "unknown_field"
