"""The worker's bulk acknowledgement sends exactly what paho's per-message ``ack`` would."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cityos.ingest.worker import acknowledge_all


def _client() -> mqtt.Client:
    return mqtt.Client(CallbackAPIVersion.VERSION2, client_id="t", protocol=mqtt.MQTTv5, manual_ack=True)


def _queued(client: mqtt.Client) -> bytes:
    return b"".join(bytes(packet["packet"]) for packet in client._out_packet)


def test_bulk_acknowledgement_queues_the_bytes_of_one_ack_per_message():
    mids = [1, 2, 255, 256, 40_000, 65_535]
    one_by_one, bulk = _client(), _client()
    for mid in mids:
        one_by_one.ack(mid, 1)
    acknowledge_all(bulk, mids)
    assert _queued(bulk) == _queued(one_by_one)
    assert len(bulk._out_packet) == 1


def test_bulk_acknowledgement_of_nothing_queues_nothing():
    client = _client()
    acknowledge_all(client, [])
    assert not client._out_packet
