"""The gateway's SQLite outbox: order, acknowledgement, crash recovery, overflow policy, clock re-stamping."""

from __future__ import annotations

import json

import pytest

from cityos.ingest.gateway.outbox import EVENT, Outbox

TOPIC = "cityos/v1/vehicle/car-01/readings"


@pytest.fixture()
def outbox(tmp_path):
    box = Outbox(tmp_path / "outbox.db", max_bytes=10_000_000, boot="boot-1")
    yield box
    box.close()


def _times(batch) -> list[str]:
    return [r["t"] for r in json.loads(batch.payload)["batch"]]


def test_a_batch_holds_readings_in_observation_time_order(outbox):
    for t in (30.0, 10.0, 20.0):
        outbox.put(TOPIC, 1_800_000_000 + t, {"lat": 37.5, "lon": 139.9})
    assert _times(outbox.next_batch()) == ["2027-01-15T08:00:10.000000Z", "2027-01-15T08:00:20.000000Z",
                                           "2027-01-15T08:00:30.000000Z"]


def test_events_are_sent_before_routine_readings(outbox):
    outbox.put(TOPIC, 1_800_000_000, {"lat": 37.5, "lon": 139.9})
    outbox.put(TOPIC, 1_800_000_100, {"lat": 37.5, "lon": 139.9, "accel_long": -5.0}, priority=EVENT)
    assert outbox.next_batch().priority == EVENT


def test_rows_leave_only_when_acknowledged(outbox):
    outbox.put(TOPIC, 1_800_000_000, {"lat": 37.5, "lon": 139.9})
    batch = outbox.next_batch()
    assert outbox.next_batch() is None  # in flight: not handed out twice
    assert outbox.depth()["total"] == 1
    assert outbox.acked(batch.ids) == 1
    assert outbox.depth()["total"] == 0


def test_after_a_crash_unacknowledged_rows_are_sent_again(tmp_path):
    box = Outbox(tmp_path / "o.db", max_bytes=10_000_000, boot="b")
    box.put(TOPIC, 1_800_000_000, {"lat": 37.5, "lon": 139.9})
    box.next_batch()  # handed to the sender, then the process dies without a PUBACK
    reopened = Outbox(tmp_path / "o.db", max_bytes=10_000_000, boot="b")
    assert reopened.recover()["released"] == 1
    assert reopened.next_batch().count == 1


def test_a_batch_ends_before_a_repeated_time(outbox):
    outbox.put(TOPIC, 1_800_000_000, {"lat": 37.5, "lon": 139.9})
    outbox.put(TOPIC, 1_800_000_000, {"lat": 37.6, "lon": 139.9})
    assert outbox.next_batch().count == 1


def test_overflow_drops_the_oldest_routine_readings_first_and_counts_them(tmp_path):
    box = Outbox(tmp_path / "o.db", max_bytes=3_000, boot="b")
    box.put(TOPIC, 1_799_999_000, {"lat": 37.5, "lon": 139.9, "accel_long": -6.0}, priority=EVENT)
    for n in range(40):
        box.put(TOPIC, 1_800_000_000 + n, {"lat": 37.5, "lon": 139.9})
    assert box.bytes_used <= 3_000
    assert box.counters.get("dropped_overflow_routine") > 0
    assert box.counters.get("dropped_overflow_event") == 0
    assert box.next_batch().priority == EVENT


def test_readings_of_an_unsynchronised_clock_are_held_then_restamped(outbox):
    outbox.put(TOPIC, 1000.0, {"lat": 37.5, "lon": 139.9}, trusted=False, mono=50.0)
    assert outbox.next_batch() is None
    assert outbox.restamp(1_800_000_000.0) == 1
    assert _times(outbox.next_batch()) == ["2027-01-15T08:00:50.000000Z"]


def test_readings_older_than_the_platform_accepts_expire(outbox):
    outbox.put(TOPIC, 1_000_000_000, {"lat": 37.5, "lon": 139.9})
    assert outbox.expire(now=1_800_000_000) == 1
    assert outbox.counters.get("dropped_expired") == 1
