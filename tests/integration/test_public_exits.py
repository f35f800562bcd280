"""Public exits carry only validated readings, normalised: the SSE feed, the WebSocket feed, the public MQTT tree.

A public snowplow publishes each hostile payload an attacker tried (HTML in a field, a nested object,
NaN, Infinity, a time without offset, latitude 91.5), each followed by a valid reading. Real broker,
real ``cityos ingest`` (workers and public feed), real API process.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import httpx
import psycopg
import pytest
from publisher import Publisher
from servers import Workers
from websockets.sync.client import connect

from cityos.ingest.broker_auth import PUBLIC_PASSWORD, PUBLIC_USER
from cityos.platform.mqtt import BrokerAddress, new_client
from helpers import api_server, wait_for

# Times here pass ingest's window relative to now: tests/integration/test_time_windows.py re-runs
# these tests with the clock a year ahead.
pytestmark = pytest.mark.windowed

PLOW = "plow-hostile-01"
TOPIC = f"cityos/v1/vehicle/{PLOW}/readings"
PUBLIC_TOPIC = f"cityos/public/v1/snowplows/{PLOW}"
JST = timezone(timedelta(hours=9))


def _hostile(t: str) -> list[tuple[str, str]]:
    """(expected dead-letter reason, raw payload) for each attack."""
    return [
        ("bad_type", json.dumps({"t": t, "lat": 37.49, "lon": 139.93, "speed_kmh": "<img src=x onerror=alert(1)>"})),
        ("bad_type", json.dumps({"t": t, "lat": {"$gt": 0, "html": "<b>x</b>"}, "lon": 139.93})),
        ("non_finite", f'{{"t": "{t}", "lat": NaN, "lon": 139.93}}'),
        ("non_finite", f'{{"t": "{t}", "lat": 37.49, "lon": 139.93, "speed_kmh": Infinity}}'),
        ("bad_time", json.dumps({"t": t[:19], "lat": 37.49, "lon": 139.93})),
        ("out_of_range", json.dumps({"t": t, "lat": 91.5, "lon": 139.93})),
    ]


class Collector(threading.Thread):
    """Records what one public exit delivers until stopped."""

    def __init__(self, target):
        super().__init__(daemon=True)
        self.events: list[dict] = []
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self._target = target

    def run(self) -> None:
        try:
            self._target(self)
        except Exception:
            if not self.stopping.is_set():  # the server closing the stream at the end is expected
                raise


def _sse(base: str):
    def read(c: Collector) -> None:
        with httpx.stream("GET", f"{base}/api/v1/live/snowplows", timeout=30) as response:
            event = None
            for line in response.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data = json.loads(line[5:])
                    if event == "snapshot":
                        c.ready.set()
                    else:
                        c.events.append(data)
                if c.stopping.is_set():
                    return
    return read


def _websocket(base: str):
    def read(c: Collector) -> None:
        with connect(f"{base.replace('http://', 'ws://')}/api/v1/live/snowplows/ws", open_timeout=10) as ws:
            while not c.stopping.is_set():
                try:
                    message = json.loads(ws.recv(timeout=0.5))
                except TimeoutError:
                    continue
                if message["event"] == "snapshot":
                    c.ready.set()
                elif message["event"] == "position":
                    c.events.append(message["data"])
    return read


def _mqtt(url: str, topic: str):
    def read(c: Collector) -> None:
        address = BrokerAddress.parse(url)
        client = new_client(address, f"dev-{time.monotonic_ns()}")
        client.on_connect = lambda cl, *a: cl.subscribe(topic, qos=0)
        client.on_subscribe = lambda *a: c.ready.set()
        client.on_message = lambda cl, u, m: c.events.append({"retained": bool(m.retain), **json.loads(m.payload)})
        client.connect(address.host, address.port)
        client.loop_start()
        c.stopping.wait()
        client.disconnect()
        client.loop_stop()
    return read


@pytest.fixture(scope="module")
def attack(database_url, test_broker, tmp_path_factory):
    """Run the attack once with all three exits watching; returns (valid events expected, what each exit saw)."""
    from cityos.ingest.devices import add_device

    home = tmp_path_factory.mktemp("hostile")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from core.devices where device_id = %s", (PLOW,))
        conn.execute("delete from core.dead_letters where device_id = %s", (PLOW,))
        new = add_device(conn, PLOW, "vehicle", kind="snowplow", public=True)
    test_broker.provision(database_url, new)
    password = new.mqtt_password
    public_url = f"mqtt://{PUBLIC_USER}:{PUBLIC_PASSWORD}@127.0.0.1:{test_broker.port}"
    ingest = Workers(database_url, test_broker.url, home / "ingest")
    ingest.start(settle=2)
    env = {"CITYOS_DATABASE_URL": database_url, "CITYOS_MQTT_URL": test_broker.url, "CITYOS_HOME": str(home)}
    try:
        with api_server(env) as base:
            exits = {"sse": Collector(_sse(base)), "websocket": Collector(_websocket(base)),
                     "mqtt": Collector(_mqtt(public_url, PUBLIC_TOPIC))}
            for collector in exits.values():
                collector.start()
                assert collector.ready.wait(15)
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
            expected = []
            with Publisher(test_broker.device_url(PLOW, password)) as device:
                for n, (_, payload) in enumerate(_hostile(start.isoformat())):
                    device.publish(TOPIC, payload)
                    moment = start + timedelta(seconds=n + 1)
                    lat = round(37.49 + (n + 1) * 1e-3, 6)
                    # A valid reading, its time given in JST: every exit must show it in UTC.
                    device.publish(TOPIC, json.dumps({"t": moment.astimezone(JST).isoformat(), "lat": lat,
                                                      "lon": 139.93, "speed_kmh": 20.5, "blade_down": True}))
                    expected.append({"device_id": PLOW, "t": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "lat": lat,
                                     "lon": 139.93, "speed_kmh": 20.5, "heading_deg": None, "blade_down": True})
                    time.sleep(0.3)
                assert device.wait_acked(2 * len(expected))
            # Until each exit has shown the last valid reading (the tests then say what is wrong, if anything).
            with contextlib.suppress(AssertionError):
                wait_for(lambda: all(c.events and c.events[-1].get("lat") == expected[-1]["lat"]
                                     for c in exits.values()), timeout=5)
            retained = Collector(_mqtt(public_url, PUBLIC_TOPIC))  # a developer who connects afterwards
            retained.start()
            with contextlib.suppress(AssertionError):
                wait_for(lambda: retained.events, timeout=5)
            for collector in (*exits.values(), retained):
                collector.stopping.set()
            seen = {name: list(c.events) for name, c in exits.items()} | {"retained": list(retained.events)}
    finally:
        ingest.stop()
    return expected, seen


@pytest.mark.parametrize("exit_name", ["sse", "websocket"])
def test_a_live_feed_shows_only_the_valid_readings_normalised(attack, exit_name):
    expected, seen = attack
    events = seen[exit_name]
    assert events and all(event in expected for event in events), events
    assert events[-1] == expected[-1]


def test_the_public_mqtt_tree_shows_only_the_valid_readings_normalised(attack):
    expected, seen = attack
    events = [{k: v for k, v in e.items() if k != "retained"} for e in seen["mqtt"]]
    assert events and all(event in expected for event in events), events
    assert events[-1] == expected[-1]


def test_the_retained_public_message_is_the_latest_valid_reading(attack):
    expected, seen = attack
    assert seen["retained"] == [{"retained": True, **expected[-1]}]


def test_each_hostile_payload_is_in_the_dead_letter_store(attack, db):
    rows = db.execute("select reason from core.dead_letters where device_id = %s", (PLOW,)).fetchall()
    assert sorted(r[0] for r in rows) == sorted(reason for reason, _ in _hostile("x"))
