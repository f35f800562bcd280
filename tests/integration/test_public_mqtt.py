"""The public MQTT tree: developers read cityos/public/# as `public`, throttled, and nothing else."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from publisher import Publisher
from servers import Workers

from cityos.ingest.broker_auth import PUBLIC_PASSWORD, PUBLIC_USER
from cityos.ingest.public_feed import PublicFeed
from cityos.platform.mqtt import BrokerAddress, new_client

# Times here pass ingest's window relative to now: tests/integration/test_time_windows.py re-runs
# these tests with the clock a year ahead.
pytestmark = pytest.mark.windowed

PLOW = "plow-pub-01"


class Listener:
    """A developer's client: subscribes and records what arrives."""

    def __init__(self, url: str, topic: str):
        self.messages: list[mqtt.MQTTMessage] = []
        self.subscribed = threading.Event()
        address = BrokerAddress.parse(url)
        self.client = new_client(address, f"dev-{time.monotonic_ns()}")
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=0)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.append(m)
        self.client.connect(address.host, address.port)
        self.client.loop_start()
        assert self.subscribed.wait(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture()
def feed(database_url, test_broker, tmp_path):
    """Ingest workers (without their own public feed) and a public feed in this process."""
    ingest = Workers(database_url, test_broker.url, tmp_path / "ingest", public_feed=False)
    ingest.start()
    running = PublicFeed(database_url, test_broker.url, k=10, energy_interval_s=0.5)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    assert running.positions.listening.wait(5)
    yield running
    running.stop()
    thread.join(5)
    ingest.stop()


def _public_url(test_broker) -> str:
    return f"mqtt://{PUBLIC_USER}:{PUBLIC_PASSWORD}@127.0.0.1:{test_broker.port}"


def _reading(n: int) -> str:
    return json.dumps({"t": datetime.now(UTC).isoformat(), "lat": 37.49 + n * 1e-4, "lon": 139.93, "speed_kmh": 20})


def test_developers_get_public_snowplow_positions_throttled_to_one_a_second(feed, register, test_broker):
    password = register(PLOW, "vehicle", kind="snowplow", public=True)
    listener = Listener(_public_url(test_broker), "cityos/public/v1/snowplows/#")
    try:
        with Publisher(test_broker.device_url(PLOW, password)) as device:
            for n in range(10):  # ten positions within half a second
                device.publish(f"cityos/v1/vehicle/{PLOW}/readings", _reading(n))
                time.sleep(0.05)
            time.sleep(2)
        received = [json.loads(m.payload) for m in listener.messages
                    if m.topic == f"cityos/public/v1/snowplows/{PLOW}"]
        assert len(received) == 2  # the first at once, the newest when the vehicle's second is over
        assert {r["device_id"] for r in received} == {PLOW}
        assert received[-1]["lat"] == pytest.approx(37.49 + 9 * 1e-4)
    finally:
        listener.close()


def test_developers_get_the_energy_aggregate(feed, test_broker):
    listener = Listener(_public_url(test_broker), "cityos/public/v1/energy/districts")
    try:
        deadline = time.monotonic() + 5
        while not listener.messages and time.monotonic() < deadline:
            time.sleep(0.1)
        assert set(json.loads(listener.messages[0].payload)) == {"t", "city", "districts"}
    finally:
        listener.close()


def test_the_public_account_reads_no_device_topics_and_writes_nothing(register, test_broker):
    password = register("hems-pub-priv", "hems")
    listener = Listener(_public_url(test_broker), "cityos/v1/#")
    try:
        with Publisher(test_broker.device_url("hems-pub-priv", password)) as device:
            device.publish("cityos/v1/hems/hems-pub-priv/readings", json.dumps({"t": datetime.now(UTC).isoformat(),
                                                                                 "power_w": 5}))
            device.wait_acked(1)
        with Publisher(_public_url(test_broker)) as developer:
            developer.publish("cityos/public/v1/energy/districts", "forged", key="forged")
            developer.wait_acked(1)
        time.sleep(1)
        assert listener.messages == []
        assert "forged" in developer.denied
    finally:
        listener.close()
