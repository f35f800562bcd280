"""The gateway numbers readings per stream at enqueue, and keeps sent readings (bounded) for a resend on request."""

from __future__ import annotations

import json
import time

import pytest

from cityos.ingest.gateway.outbox import Outbox

TOPIC = "cityos/v1/hems/home-01/readings"
OTHER = "cityos/v1/hems/home-02/readings"
T0 = 1_800_000_000.0


@pytest.fixture()
def outbox(tmp_path):
    box = Outbox(tmp_path / "outbox.db", max_bytes=10_000_000, boot="b", keep_s=7 * 86400, keep_bytes=10_000_000)
    yield box
    box.close()


def _numbers(batch) -> list[int]:
    return [r["sn"] for r in json.loads(batch.payload)["batch"]]


def _put(box: Outbox, start: int, count: int, topic: str = TOPIC) -> None:
    for n in range(start, start + count):
        box.put(topic, T0 + n, {"power_w": n})


def test_each_stream_is_numbered_from_1_in_enqueue_order_even_after_a_restart(tmp_path):
    box = Outbox(tmp_path / "o.db", max_bytes=10_000_000, boot="b")
    _put(box, 0, 3)
    _put(box, 0, 2, OTHER)
    box.close()
    box = Outbox(tmp_path / "o.db", max_bytes=10_000_000, boot="b")
    box.put(TOPIC, T0 - 100, {"power_w": 1})  # observed earlier, enqueued later: a later number
    batch = box.next_batch()
    assert batch.topic == TOPIC and _numbers(batch) == [4, 1, 2, 3]
    assert _numbers(box.next_batch()) == [1, 2]


def test_a_reading_keeps_its_number_when_it_is_sent_again(outbox):
    _put(outbox, 0, 3)
    first = outbox.next_batch()
    outbox.acked(first.ids, confirm=True, now=T0)
    outbox.resend_unconfirmed(timeout=5, now=T0 + 10)  # never confirmed: sent again in a new message
    again = outbox.next_batch()
    assert again.seq != first.seq and _numbers(again) == _numbers(first) == [1, 2, 3]


def test_confirmed_readings_are_kept_and_a_requested_range_is_sent_again_with_its_numbers(outbox):
    _put(outbox, 0, 10)
    batch = outbox.next_batch()
    outbox.acked(batch.ids, confirm=True)
    outbox.confirmed([batch.seq])
    assert outbox.depth()["total"] == 0
    assert outbox.resend(TOPIC, 4, 6) == {"requeued": 3, "queued": 0, "unavailable": 0}
    assert _numbers(outbox.next_batch()) == [4, 5, 6]
    assert outbox.resend(TOPIC, 4, 12) == {"requeued": 4, "queued": 3, "unavailable": 2}  # 7..10 kept, 11.. never


def test_readings_acknowledged_without_confirmation_are_kept_too(outbox):
    _put(outbox, 0, 2)
    outbox.acked(outbox.next_batch().ids)
    assert outbox.resend(TOPIC, 1, 2)["requeued"] == 2


def test_kept_readings_are_forgotten_after_the_keeping_time(outbox):
    _put(outbox, 0, 3)
    outbox.acked(outbox.next_batch().ids)
    assert outbox.prune_kept(now=time.time() + 7 * 86400 - 60) == 0
    assert outbox.prune_kept(now=time.time() + 7 * 86400 + 1) == 3
    assert outbox.resend(TOPIC, 1, 3)["unavailable"] == 3


def test_kept_readings_beyond_the_size_bound_go_oldest_first(tmp_path):
    box = Outbox(tmp_path / "o.db", max_bytes=10_000_000, boot="b", keep_s=86400, keep_bytes=1000)
    _put(box, 0, 40)
    while (batch := box.next_batch(max_count=5)) is not None:
        box.acked(batch.ids)
    kept = box._db.execute("select min(sn), max(sn), sum(size) from kept").fetchone()
    assert kept[1] == 40 and kept[0] > 1 and kept[2] <= 1000
    assert box.counters.snapshot()["kept_pruned"] == kept[0] - 1


def test_nothing_is_kept_when_keeping_is_off(tmp_path):
    box = Outbox(tmp_path / "o.db", max_bytes=10_000_000, boot="b")
    _put(box, 0, 2)
    box.acked(box.next_batch().ids)
    assert box.resend(TOPIC, 1, 2) == {"requeued": 0, "queued": 0, "unavailable": 2}
