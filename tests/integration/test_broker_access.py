"""What each broker account may do, refused at SUBSCRIBE and PUBLISH time (issue 14, items 1 and 7).

The attacker's moves of the review, against the real broker: joining the ingest share group (which
silently took a share of the stream), subscribing to ``#`` and ``$SYS/#``, reading or writing other
devices' topics, parking sessions and piling up retained messages.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from publisher import Publisher

from cityos.ingest.broker_auth import INGEST_GROUP, PUBLIC_PASSWORD, PUBLIC_USER
from cityos.platform.mqtt import BrokerAddress, new_client
from helpers import hours_ago, wait_for

VICTIM, INTRUDER = "hems-acc-victim", "hems-acc-intruder"
SHARE = f"$share/{INGEST_GROUP}/cityos/v1/#"


def _topic(device: str, stream: str = "readings") -> str:
    return f"cityos/v1/hems/{device}/{stream}"


class Session:
    """An MQTT 5 client of one account with a persistent session (as a parked attacker keeps it)."""

    def __init__(self, url: str, client_id: str = ""):
        self.address = BrokerAddress.parse(url)
        self.client_id = client_id or f"acc-{uuid.uuid4().hex[:10]}"
        self.client = new_client(self.address, self.client_id)
        self.granted: dict[int, list] = {}
        self.received: list[mqtt.MQTTMessage] = []
        self.disconnected = threading.Event()
        self._suback = threading.Condition()
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda _c, _u, m: self.received.append(m)
        self.client.on_disconnect = lambda *a: self.disconnected.set()

    def _on_subscribe(self, _c, _u, mid, reason_codes, _p) -> None:
        with self._suback:
            self.granted[mid] = list(reason_codes)
            self._suback.notify_all()

    def connect(self, clean_start: bool = False) -> Session:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 7 * 24 * 3600
        self.client.connect(self.address.host, self.address.port, keepalive=30, clean_start=clean_start,
                            properties=props)
        self.client.loop_start()
        wait_for(self.client.is_connected, timeout=5)
        return self

    def subscribe(self, topic: str, qos: int = 1) -> object:
        """SUBSCRIBE and wait for the SUBACK; its reason code."""
        _, mid = self.client.subscribe(topic, qos=qos)
        with self._suback:
            assert self._suback.wait_for(lambda: mid in self.granted, timeout=5), f"no SUBACK for {topic}"
            return self.granted[mid][0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _public_url(test_broker) -> str:
    return f"mqtt://{PUBLIC_USER}:{PUBLIC_PASSWORD}@127.0.0.1:{test_broker.port}"


def _broker_rss_kib(test_broker) -> int:
    pid = test_broker.broker.pidfile.read_text().split()[0]
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture()
def accounts(register, test_broker):
    """The victim device, an intruding device and the public account, each as a broker URL."""
    return {"public": _public_url(test_broker),
            "device": test_broker.device_url(VICTIM, register(VICTIM, "hems")),
            "other device": test_broker.device_url(INTRUDER, register(INTRUDER, "hems"))}


def _attempts(kind: str) -> list[str]:
    other = _topic(INTRUDER) if kind == "device" else _topic(VICTIM)
    return ["#", "$SYS/#", other, SHARE, "cityos/v1/#", f"$share/{INGEST_GROUP}/#"]


def test_every_account_is_refused_at_subscribe_outside_its_rights_and_no_reading_is_lost(
        accounts, workers, test_broker, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from telemetry.energy_readings where device_id = %s", (VICTIM,))
    base = hours_ago(2)
    count = 10_000
    refused: dict[tuple[str, str], object] = {}
    sessions = [Session(url).connect() for url in accounts.values()]
    try:
        with Publisher(accounts["device"], client_id=f"victim-{uuid.uuid4().hex[:6]}") as device:
            for seq in range(count):
                device.publish(_topic(VICTIM), json.dumps({"t": (base + timedelta(milliseconds=seq)).isoformat(),
                                                           "power_w": seq}), key=seq)
                if seq % 1000 == 0:  # the attackers keep trying while the stream flows
                    for kind, session in zip(accounts, sessions, strict=True):
                        for topic in _attempts(kind):
                            refused[(kind, topic)] = session.subscribe(topic)
            assert device.wait_acked(count, timeout=60)
            assert len(device.acked) == count, device.denied
    finally:
        for session in sessions:
            session.close()
    granted = {attempt: str(code) for attempt, code in refused.items() if not code.is_failure}
    assert granted == {}, f"subscriptions granted outside the account's rights: {granted}"
    assert all(session.received == [] for session in sessions)

    def stored() -> int:
        with psycopg.connect(database_url) as conn:
            return conn.execute("select count(distinct value) from telemetry.energy_readings where device_id = %s",
                                (VICTIM,)).fetchone()[0]

    wait_for(lambda: stored() == count, timeout=90, interval=0.5,
             message=lambda: f"{stored()} of {count} acknowledged readings stored")


def test_the_public_account_may_subscribe_to_the_public_tree_only(test_broker):
    session = Session(_public_url(test_broker)).connect(clean_start=True)
    try:
        assert not session.subscribe("cityos/public/#").is_failure
        assert not session.subscribe("cityos/public/v1/snowplows/+").is_failure
        assert session.subscribe("cityos/+/v1/#").is_failure
    finally:
        session.close()


def test_a_device_may_publish_only_its_own_stream_topics(accounts):
    with Publisher(accounts["device"]) as device:
        allowed = [_topic(VICTIM), _topic(VICTIM, "senml")]
        refused = [_topic(VICTIM, "d4c"), _topic(VICTIM, "config"), _topic(VICTIM) + "/x", _topic(INTRUDER),
                   f"cityos/v1/vehicle/{VICTIM}/readings", "cityos/public/v1/energy/districts", "anything/else",
                   "$CONTROL/dynamic-security/v1"]
        for topic in allowed + refused:
            device.publish(topic, json.dumps({"t": hours_ago(1).isoformat(), "power_w": 1}), key=topic)
        assert device.wait_acked(len(allowed) + len(refused))
    assert device.acked == set(allowed)
    assert set(device.denied) == set(refused)


def test_a_device_may_subscribe_to_its_own_confirmations_only(accounts):
    session = Session(accounts["device"]).connect(clean_start=True)
    try:
        assert session.subscribe(_topic(VICTIM)).is_failure
        assert session.subscribe(f"cityos/v1/hems/{VICTIM}/#").is_failure
        for other in (f"cityos/confirm/v1/{INTRUDER}", "cityos/confirm/v1/+", "cityos/confirm/v1/#",
                      "cityos/confirm/#"):
            assert session.subscribe(other).is_failure, other
        assert not session.subscribe(f"cityos/confirm/v1/{VICTIM}").is_failure
    finally:
        session.close()


def test_revocation_disconnects_a_connected_device_at_once(register, test_broker, database_url):
    from cityos.ingest.devices import revoke_device

    session = Session(test_broker.device_url("hems-acc-revoked", register("hems-acc-revoked", "hems"))).connect()
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            revoke_device(conn, "hems-acc-revoked")
        started = time.monotonic()
        result = test_broker.sync(database_url)
        assert "hems-acc-revoked" in result.removed
        assert session.disconnected.wait(5)
        assert time.monotonic() - started < 2
    finally:
        session.close()


def test_parked_public_sessions_hold_no_queue_and_do_not_grow_the_broker(test_broker, accounts):
    """Public sessions parked with every subscription they could get, then 20,000 x 4 KiB on the public tree.

    The public tree is published with QoS 0 (as the public feed does), so a parked session queues none of it.
    """
    parked = []
    for n in range(4):
        session = Session(accounts["public"], client_id=f"parked-public-{n}-{uuid.uuid4().hex[:6]}").connect()
        for topic in (SHARE, "#", "cityos/public/#"):
            session.subscribe(topic, qos=1)
        session.close()
        parked.append(session.client_id)
    before = _broker_rss_kib(test_broker)
    with Publisher(test_broker.url) as service:
        for _ in range(20_000):
            service.client.publish("cityos/public/v1/test", "y" * 4096, qos=0)
        time.sleep(2)
    grown = _broker_rss_kib(test_broker) - before
    back = Session(accounts["public"], client_id=parked[0]).connect()
    try:
        time.sleep(1)
        assert back.received == [], "a parked public session was holding messages"
    finally:
        back.close()
    assert grown < 16 * 1024, f"the broker grew by {grown} KiB"


def test_a_device_cannot_keep_large_retained_messages_under_arbitrary_topics(accounts, test_broker):
    before = _broker_rss_kib(test_broker)
    big = "r" * (500 * 1024)
    topics = [f"{_topic(VICTIM)}/{n}" for n in range(50)] + [f"cityos/v1/hems/{VICTIM}/s{n}" for n in range(50)]
    with Publisher(accounts["device"]) as device:
        for topic in topics:
            device.client.publish(topic, big, qos=1, retain=True)
        time.sleep(2)
    grown = _broker_rss_kib(test_broker) - before
    assert grown < 20 * 1024, f"the broker kept {grown} KiB of a device's retained messages"
    # Nothing retained under those topics reaches a new reader.
    reader = Session(test_broker.url).connect(clean_start=True)
    try:
        reader.subscribe(f"cityos/v1/hems/{VICTIM}/#")
        time.sleep(1)
        assert [m.topic for m in reader.received if m.retain] == []
    finally:
        reader.close()
