"""The sender: takes batches from the outbox and publishes them (MQTT 5, QoS 1); rows leave once stored.

End-to-end confirmation (``[sender] confirm``, on by default): each message carries a sequence number
(MQTT 5 user property ``seq``); after the PUBACK its readings stay in the outbox until the platform
says on ``cityos/confirm/v1/{device_id}`` (which only this device may read) that the message is
stored; readings unconfirmed ``confirm_timeout_s`` after their PUBACK are sent again. A PUBACK only
means the broker holds the message: a restarted Mosquitto acknowledges messages that match no
subscriber until the ingest workers have subscribed again, and drops them. If the broker refuses the
subscription (a platform without confirmation), readings leave the outbox at the PUBACK as before.

Resend on request: the sender subscribes to ``cityos/command/v1/{device_id}/resend`` (only the platform
may publish there, only this device may read it). ``{"stream": "hems", "from": 10, "to": 20}`` queues the
kept readings of that stream numbered 10..20 again (:meth:`Outbox.resend`); the platform stores each once.

A persistent session (clean start off, session expiry) and paho's reconnect with back-off carry it
through broker restarts and days without network: readings simply wait in the outbox. At most
``inflight`` messages await their PUBACK at once. When the connection drops, the readings of
unacknowledged messages are released to be sent again; a reading that reaches the broker twice is
stored once (the platform's keys make re-delivery idempotent).
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cityos.ingest.contract import DOMAIN_NAMES, SEQ_PROPERTY, command_topic, confirm_topic
from cityos.ingest.gateway.config import GatewayConfig
from cityos.ingest.gateway.counters import Counters
from cityos.ingest.gateway.outbox import Outbox
from cityos.ingest.gateway.payload import topic

log = logging.getLogger(__name__)
#: Seconds the sender waits after the broker refused a message before it sends again.
REFUSED_PAUSE_S = 2.0


class CredentialsError(RuntimeError):
    """No usable credentials file: the gateway must be enrolled first."""


@dataclass(frozen=True)
class Credentials:
    """The device's MQTT credentials (written by ``cityos gateway enroll``, mode 600)."""

    username: str
    password: str

    @classmethod
    def load(cls, path: Path) -> Credentials:
        try:
            data = json.loads(path.read_text())
            return cls(data["mqtt_username"], data["mqtt_password"])
        except FileNotFoundError:
            raise CredentialsError(f"{path}: no credentials; run `cityos gateway enroll` first") from None
        except (ValueError, KeyError) as exc:
            raise CredentialsError(f"{path}: not a credentials file ({exc})") from None


class Sender:
    """Publishes the outbox's batches over one MQTT connection (paho's network thread plus a pump thread)."""

    def __init__(self, config: GatewayConfig, outbox: Outbox, counters: Counters, credentials: Credentials):
        self.config, self.outbox, self.counters = config, outbox, counters
        url = urlsplit(config.broker_url)
        self.host, self.tls = url.hostname or "127.0.0.1", url.scheme == "mqtts"
        self.port = url.port or (8883 if self.tls else 1883)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"gateway-{config.device_id}",
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(credentials.username, credentials.password)
        if self.tls:
            ca = str(config.sender.ca_file) if config.sender.ca_file else None
            self.client.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.reconnect_delay_set(2, 60)
        self.client.max_inflight_messages_set(config.sender.inflight)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.confirm_topic = confirm_topic(config.device_id)
        self.command_topic = command_topic(config.device_id, "resend")
        self._command_mid: int | None = None
        self._confirming = config.sender.confirm  # off if the broker refuses the confirmation topic
        self._next_resend_check = 0.0
        # Guards _inflight and _early only, and is never held while calling paho: paho calls _on_publish
        # holding its own message lock, which client.publish() takes too (holding ours across publish()
        # deadlocked the gateway as soon as a PUBACK arrived during the next publish, inflight > 1).
        self._lock = threading.Lock()
        self._inflight: dict[int, list[int]] = {}
        self._early: dict[int, object] = {}  # mid -> reason code of a PUBACK that beat its registration
        self._connected = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pump_thread = threading.Thread(target=self._pump, name="sender", daemon=True)
        self._resume_at = 0.0

    # -- paho callbacks (network thread) -----------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.counters.inc("connect_refused")
            log.warning("broker refused the connection: %s", reason_code)
            return
        self.counters.inc("connects")
        if self.config.sender.confirm:
            client.subscribe(self.confirm_topic, qos=1)
        self._command_mid = client.subscribe(self.command_topic, qos=1)[1]
        if not flags.session_present:
            self._resume_at = time.monotonic() + self.config.sender.resume_delay_s
        self._connected.set()
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        with self._lock:
            released = [ids for ids in self._inflight.values()]
            self._inflight.clear()
            self._early.clear()
        for ids in released:
            self.outbox.release(ids)
        if not self._stop.is_set():
            self.counters.inc("disconnects")
            log.info("disconnected from the broker (%s); readings wait in the outbox", reason_code)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._lock:
            ids = self._inflight.pop(mid, None)
            if ids is None:  # the PUBACK beat the pump to registering the message (or is stale: see _pump)
                self._early[mid] = reason_code
                return
        self._settle(ids, reason_code)

    def _settle(self, ids: list[int], reason_code) -> None:
        """The broker answered the message carrying readings ``ids``."""
        if reason_code.is_failure:  # e.g. not authorised: keep the readings, count, try later
            self.counters.inc("publish_refused")
            self.outbox.release(ids)
            # Not authorized is also the ingest gate after a broker restart (no worker subscribed yet): pause
            # rather than spin on refusals.
            self._resume_at = max(self._resume_at, time.monotonic() + REFUSED_PAUSE_S)
            return
        self.outbox.acked(ids, confirm=self._confirming)
        self.counters.inc("messages_acked")
        self._wake.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if mid == self._command_mid:
            if reason_codes and reason_codes[0].is_failure:
                self.counters.inc("command_refused")
                log.warning("the broker refused %s (%s): no resends on request", self.command_topic, reason_codes[0])
            return
        if reason_codes and reason_codes[0].is_failure:
            self._confirming = False
            self.counters.inc("confirm_refused")
            log.warning("the broker refused %s (%s): readings leave the outbox at the PUBACK, without the "
                        "platform's confirmation", self.confirm_topic, reason_codes[0])
        else:
            self._confirming = self.config.sender.confirm

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic == self.command_topic:
            self._resend(msg.payload)
            return
        if msg.topic != self.confirm_topic:
            return
        try:
            seqs = [int(n) for n in json.loads(msg.payload)["seq"]]
        except (ValueError, KeyError, TypeError):
            self.counters.inc("confirm_malformed")
            return
        self.outbox.confirmed(seqs)
        self.counters.inc("confirmations")

    def _resend(self, payload: bytes) -> None:
        """The platform asks for the kept readings of a stream numbered ``from``..``to`` again."""
        try:
            command = json.loads(payload)
            stream, first, last = command["stream"], command["from"], command["to"]
            if stream not in DOMAIN_NAMES or not all(type(n) is int for n in (first, last)) or not 1 <= first <= last:
                raise ValueError(command)
        except (ValueError, KeyError, TypeError):
            self.counters.inc("command_malformed")
            log.warning("malformed resend command ignored: %r", bytes(payload)[:200])
            return
        result = self.outbox.resend(topic(stream, self.config.device_id, self.config.topic_root), first, last)
        self.counters.inc("resend_commands")
        log.info("resend of %s %d..%d requested: %s", stream, first, last, result)
        self._wake.set()

    # -- pump ------------------------------------------------------------------------------------
    def wake(self) -> None:
        """Send now (an event arrived)."""
        self._wake.set()

    def _pump(self) -> None:
        settings = self.config.sender
        while not self._stop.is_set():
            if not self._connected.is_set():
                self._connected.wait(0.5)
                continue
            if (pause := self._resume_at - time.monotonic()) > 0:
                self._stop.wait(min(pause, 0.5))
                continue
            if self._confirming and time.monotonic() >= self._next_resend_check:
                self._next_resend_check = time.monotonic() + 1.0
                self.outbox.resend_unconfirmed(settings.confirm_timeout_s)
            with self._lock:
                room = len(self._inflight) < settings.inflight
            batch = self.outbox.next_batch(settings.batch_size) if room else None
            if batch is None:
                self._wake.wait(settings.linger_s if room else 0.2)
                self._wake.clear()
                continue
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = (SEQ_PROPERTY, str(batch.seq))
            info = self.client.publish(batch.topic, batch.payload, qos=1, properties=props)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                self.outbox.release(batch.ids)
                self._connected.wait(0.5)
                continue
            with self._lock:
                early = self._early.pop(info.mid, None)
                # This thread is the only publisher and registers each message right after publish(): any
                # other early answer is stale (paho re-sending an unacknowledged message after a reconnect,
                # whose readings were released to the outbox already); dropped so a reused mid cannot match it.
                self._early.clear()
                if early is None:
                    self._inflight[info.mid] = batch.ids
            self.counters.inc("messages_published")
            if early is not None:
                self._settle(batch.ids, early)

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.config.sender.session_expiry_s
        self.client.connect_async(self.host, self.port, keepalive=self.config.sender.keepalive_s, clean_start=False,
                                  properties=props)
        self.client.loop_start()
        self._pump_thread.start()

    def flush(self, timeout: float) -> bool:
        """Wait (up to ``timeout`` s) until every published message is acknowledged."""
        done = threading.Event()
        deadline = threading.Timer(timeout, done.set)
        deadline.start()
        try:
            while not done.is_set():
                with self._lock:
                    if not self._inflight:
                        return True
                done.wait(0.05)
            return False
        finally:
            deadline.cancel()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking batches, wait for outstanding PUBACKs, disconnect."""
        self._stop.set()
        self._wake.set()
        self._pump_thread.join(5)
        self.flush(timeout)
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def status(self) -> dict[str, object]:
        with self._lock:
            inflight = len(self._inflight)
        return {"connected": self.connected, "broker": f"{self.host}:{self.port}", "tls": self.tls,
                "messages_in_flight": inflight, "confirmation": self._confirming}
