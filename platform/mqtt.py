"""Broker addresses and a readiness check, shared by the platform's MQTT clients."""

from __future__ import annotations

import ssl
import threading
import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass(frozen=True)
class BrokerAddress:
    """Where and how to reach the broker, parsed from ``mqtt://user:pass@host:port``."""

    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Parse an ``mqtt://`` or ``mqtts://`` URL (default ports 1883 and 8883)."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"broker URL must start with mqtt:// or mqtts://, got {url!r}")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )


def new_client(address: BrokerAddress, client_id: str = "", *, manual_ack: bool = False,
               ca_file: str | None = None) -> mqtt.Client:
    """A paho MQTT 5 client configured for ``address`` (credentials and TLS), not yet connected."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"cityos-{uuid.uuid4().hex[:12]}",
                         protocol=mqtt.MQTTv5, manual_ack=manual_ack)
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)
    return client


def feed_client(mqtt_url: str, client_id: str) -> mqtt.Client:
    """A publishing client of a feed the ingest process runs (the public feed, the SensorThings feed): it
    connects in the background, keeps trying every 1-10 s while the broker is away, and publishes once
    :meth:`loop_start` runs. ``client_id`` must be unique per process (feeds sharing an id knock each other
    off the broker)."""
    address = BrokerAddress.parse(mqtt_url)
    client = new_client(address, client_id)
    client.reconnect_delay_set(1, 10)
    client.connect_async(address.host, address.port, keepalive=30)
    return client


def check_broker(url: str, timeout: float = 3.0, ca_file: str | None = None) -> tuple[bool, str]:
    """Connect to the broker and wait for CONNACK; (ok, reason)."""
    address = BrokerAddress.parse(url)
    client = new_client(address, ca_file=ca_file)
    done = threading.Event()
    outcome: dict[str, object] = {}

    def on_connect(_c, _u, _f, reason_code, _p):
        outcome["rc"] = reason_code
        done.set()

    client.on_connect = on_connect
    try:
        client.connect(address.host, address.port, keepalive=10)
    except OSError as exc:
        return False, f"cannot reach broker: {exc}"
    client.loop_start()
    try:
        if not done.wait(timeout):
            return False, "no CONNACK from broker"
        rc = outcome["rc"]
        if getattr(rc, "is_failure", False):
            return False, f"broker refused connection: {rc}"
        return True, "ok"
    finally:
        client.disconnect()
        client.loop_stop()
