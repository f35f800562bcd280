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


# -- end-to-end confirmation ------------------------------------------------------------------------
def test_each_message_gets_a_new_sequence_number_even_after_a_restart(tmp_path):
    box = Outbox(tmp_path / "o.db", max_bytes=10_000_000, boot="b")
    box.put(TOPIC, 1_800_000_000, {"lat": 37.5, "lon": 139.9})
    first = box.next_batch()
    box.put(TOPIC, 1_800_000_001, {"lat": 37.5, "lon": 139.9})
    second = box.next_batch()
    box.close()
    reopened = Outbox(tmp_path / "o.db", max_bytes=10_000_000, boot="b")
    reopened.recover()
    assert len({first.seq, second.seq, reopened.next_batch().seq}) == 3


def test_with_confirmation_acknowledged_rows_stay_until_the_platform_confirms_their_message(outbox):
    outbox.put(TOPIC, 1_800_000_000, {"lat": 37.5, "lon": 139.9})
    batch = outbox.next_batch()
    assert outbox.acked(batch.ids, confirm=True) == 1
    assert outbox.depth()["awaiting_confirmation"] == 1
    assert outbox.next_batch() is None  # not sent again before the timeout
    assert outbox.confirmed([batch.seq + 1]) == 0  # another message's confirmation
    assert outbox.confirmed([batch.seq]) == 1
    assert outbox.depth()["total"] == 0


def test_unconfirmed_rows_are_sent_again_in_a_new_message_after_the_timeout_with_backoff(outbox):
    outbox.put(TOPIC, 1_800_000_000, {"lat": 37.5, "lon": 139.9})
    first = outbox.next_batch()
    outbox.acked(first.ids, confirm=True, now=1000.0)
    assert outbox.resend_unconfirmed(60, now=1059.0) == 0
    assert outbox.resend_unconfirmed(60, now=1060.0) == 1
    second = outbox.next_batch()
    assert second.ids == first.ids and second.seq != first.seq
    outbox.acked(second.ids, confirm=True, now=2000.0)
    assert outbox.resend_unconfirmed(60, now=2119.0) == 0  # second attempt: twice the timeout
    assert outbox.confirmed([first.seq]) == 0  # a late confirmation of the first message: the rows moved on
    assert outbox.confirmed([second.seq]) == 1


def test_rows_awaiting_confirmation_survive_a_restart(tmp_path):
    box = Outbox(tmp_path / "o.db", max_bytes=10_000_000, boot="b")
    box.put(TOPIC, 1_800_000_000, {"lat": 37.5, "lon": 139.9})
    batch = box.next_batch()
    box.acked(batch.ids, confirm=True)
    box.close()
    reopened = Outbox(tmp_path / "o.db", max_bytes=10_000_000, boot="b")
    reopened.recover()
    assert reopened.depth()["awaiting_confirmation"] == 1
    assert reopened.confirmed([batch.seq]) == 1


def test_overflow_drops_rows_awaiting_confirmation_before_any_unsent_reading(tmp_path):
    box = Outbox(tmp_path / "o.db", max_bytes=3_000, boot="b")
    for n in range(15):
        box.put(TOPIC, 1_799_999_000 + n, {"lat": 37.5, "lon": 139.9})
    batch = box.next_batch()
    box.acked(batch.ids, confirm=True)
    for n in range(15):
        box.put(TOPIC, 1_800_000_000 + n, {"lat": 37.5, "lon": 139.9})
    assert box.bytes_used <= 3_000
    assert box.counters.get("dropped_overflow_unconfirmed") > 0
    assert box.counters.get("dropped_overflow_routine") == 0


def test_an_outbox_of_an_earlier_release_gains_the_confirmation_columns(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("create table readings (id integer primary key autoincrement, topic text not null, t real not null,"
                   " priority integer not null, body text not null, clock_ok integer not null, mono real,"
                   " boot text not null, size integer not null, sent integer not null default 0)")
        db.execute("insert into readings (topic, t, priority, body, clock_ok, boot, size) values (?, ?, 0, '{}', 1,"
                   " 'b', 10)", (TOPIC, 1_800_000_000))
    box = Outbox(path, max_bytes=10_000_000, boot="b")
    assert box.next_batch().count == 1
