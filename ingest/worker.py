"""The ingest worker: MQTT 5 shared subscription in, committed rows out, at least once.

A message is acknowledged to the broker (PUBACK) only after the transaction holding its rows
or its dead letter has committed. If the database is down the worker keeps the batch, retries
with back-off and acknowledges nothing, so the broker keeps (and after a worker crash
re-delivers) every message; re-delivered readings are deduplicated by the tables' keys.
Several workers share the stream through ``$share/<group>/cityos/v1/#``.

Each worker keeps a persistent session (the broker queues its share while it is away). A worker
that leaves for good (:meth:`IngestWorker.leave`), or a drainer that resumes the session of a
worker that no longer exists (``mode="drain"``, :mod:`cityos.ingest.sessions`), first unsubscribes,
stores and acknowledges everything the session still holds, and only then disconnects with session
expiry 0, which ends the session: nothing acknowledged to a publisher is left in it.
"""

from __future__ import annotations

import json
import logging
import signal
import struct
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cityos.ingest import metrics
from cityos.ingest.admission import Admission
from cityos.ingest.dynsec import CONTROL_TOPIC, open_gate_payload
from cityos.ingest.pipeline import MessageOutcome, process_message
from cityos.ingest.topics import SEQ_PROPERTY, confirm_topic, is_valid_device_id
from cityos.ingest.writer import Batch, write_batch
from cityos.platform.db.connection import dedicated
from cityos.platform.mqtt import BrokerAddress, new_client

log = logging.getLogger(__name__)

TOPIC_FILTER = "cityos/v1/#"
TOPIC_PREFIX = "cityos/v1/"
SESSION_EXPIRY_S = 7 * 24 * 3600
#: Ending a session: after the UNSUBACK, it is empty once nothing has arrived for this long.
QUIET_S = 1.5
#: MQTT 5 DISCONNECT reason "Session taken over": another connection now owns the client id.
SESSION_TAKEN_OVER = 142
#: An MQTT 5 PUBACK with reason Success and no properties: type 4, remaining length 2, packet id
#: (the reason code may then be omitted, MQTT 5.0 section 3.4.2.1). paho's ``Client.ack`` sends these bytes too.
_PUBACK = struct.Struct("!BBH")


def acknowledge_all(client: mqtt.Client, mids: list[int]) -> None:
    """PUBACK the messages ``mids`` with one queued write.

    ``Client.ack`` queues one packet per message and wakes paho's network thread for each (two system
    calls and a dozen Python calls per message); after a batch commits the worker acknowledges thousands
    at once, so it queues their concatenation. Uses paho's ``_packet_queue``, as ``Client.ack`` does
    (paho-mqtt is pinned below 3).
    """
    if mids:
        data = b"".join([_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids])
        client._packet_queue(mqtt.PUBACK, data, 0, 0)


class Received(NamedTuple):
    """A message held until its batch commits (a tuple: one is made per message)."""

    mid: int
    topic: str
    payload: bytes
    client_id: str | None
    seq: str | None  # the publisher's number for end-to-end confirmation (MQTT 5 user property "seq")
    generation: int
    received: float


@dataclass
class WorkerConfig:
    """How one worker connects and batches."""

    database_url: str
    mqtt_url: str
    client_id: str
    group: str = "cityos-ingest"
    batch_max: int = 5000
    batch_max_bytes: int = 4 * 1024 * 1024  # about 80 messages of 1,000 readings per transaction
    flush_s: float = 0.05
    receive_maximum: int = 20000
    #: "work": subscribe and consume; "drain": resume an existing session without subscribing, store
    #: what it holds and end it (the session of a worker that no longer exists).
    mode: str = "work"
    #: Write the per-device ledger, touched roll-up buckets and late days with each batch
    #: (``CITYOS_INGEST_ACCOUNTING``; off only to measure what it costs).
    accounting: bool = True
    #: Seconds the device registry and consents are kept in memory (CITYOS_INGEST_ADMISSION_REFRESH_S).
    admission_refresh_s: float = 5.0


class IngestWorker:
    """One ingest process: receive, validate, write, then acknowledge."""

    def __init__(self, config: WorkerConfig):
        self.config = config
        self.admission = Admission(config.admission_refresh_s)
        self._queue: deque[Received] = deque()
        self._generation = 0
        self._stop = threading.Event()
        self._leave = False
        self._lost = threading.Event()  # drain/leave: the connection dropped or was taken over
        self._unsubscribed = threading.Event()
        self._session_present: bool | None = None
        self._last_message = time.monotonic()
        self._conn: psycopg.Connection | None = None
        self.address = BrokerAddress.parse(config.mqtt_url)
        self.client = new_client(self.address, config.client_id, manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_unsubscribe = self._on_unsubscribe
        # Back within a second of a broker restart: Mosquitto does not restore shared subscriptions from its
        # persistence, so messages published before the workers re-subscribe have nowhere to go. Gateways wait
        # a few seconds after such a reconnect before sending (see ingest/CONTRACT.md, "Broker restarts").
        self.client.reconnect_delay_set(0.5, 1)  # type: ignore[arg-type]  # paho's stub says int; it takes seconds
        self.committed_messages = 0
        self.ended = False  # the broker's session was ended on the way out

    # -- MQTT callbacks (network thread) -------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _u, flags, reason_code, _p) -> None:
        if reason_code.is_failure:
            log.error("broker refused the ingest worker", extra={"reason": str(reason_code)})
            return
        self._session_present = bool(flags.session_present)
        if self.config.mode == "drain" or self._leave:
            client.unsubscribe(self.share_filter)  # nothing new; what the session holds still arrives
        else:
            client.subscribe(self.share_filter, qos=1)
        log.info("ingest worker connected", extra={"client_id": self.config.client_id, "mode": self.config.mode,
                                                   "session_present": self._session_present})

    @property
    def share_filter(self) -> str:
        return f"$share/{self.config.group}/{TOPIC_FILTER}"

    def _on_subscribe(self, _c, _u, _mid, reason_codes, _p) -> None:
        if reason_codes[0].is_failure:
            log.error("broker refused the ingest subscription", extra={"reason": str(reason_codes[0])})
            return
        # The share group has a member again: open the ingest gate, so devices may publish (it is closed
        # whenever the broker starts; see cityos.ingest.broker_auth.GATE_ROLE). Idempotent.
        self.client.publish(CONTROL_TOPIC, open_gate_payload(), qos=1)
        log.info("ingest worker subscribed", extra={"client_id": self.config.client_id})

    def _on_unsubscribe(self, *_args) -> None:
        self._last_message = time.monotonic()  # quiet is counted from the UNSUBACK or the last message
        self._unsubscribed.set()

    def _on_disconnect(self, _c, _u, _f, reason_code, _p) -> None:
        # Message ids of the old connection must never be acknowledged on a new one.
        self._generation += 1
        if self.config.mode == "drain" or self._leave:
            self._lost.set()
        level = logging.INFO if reason_code.value == SESSION_TAKEN_OVER else logging.WARNING
        log.log(level, "ingest worker disconnected from broker", extra={"reason": str(reason_code),
                                                                       "client_id": self.config.client_id})

    def _on_message(self, _c, _u, msg: mqtt.MQTTMessage) -> None:
        client_id = seq = None
        props = msg.properties
        if props is not None and hasattr(props, "UserProperty"):
            for key, value in props.UserProperty:
                if key == "client_id":
                    client_id = value
                elif key == SEQ_PROPERTY:
                    seq = value
        self._last_message = time.monotonic()
        self._queue.append(Received(msg.mid, msg.topic, bytes(msg.payload), client_id, seq, self._generation,
                                    time.monotonic()))

    # -- main loop ---------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the worker to flush, acknowledge and exit, keeping its session (messages queue for it)."""
        self._stop.set()

    @property
    def leaving(self) -> bool:
        return self._leave

    def leave(self) -> None:
        """Ask the worker to leave for good: flush, then drain and end its session (other workers stay)."""
        self._leave = True
        self._stop.set()

    def _connect_mqtt(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = self.config.receive_maximum
        self.client.connect_async(self.address.host, self.address.port, keepalive=30, clean_start=False,
                                  properties=props)
        self.client.loop_start()

    def _db(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            # Not pooled: a worker writes one batch at a time on one connection of its own (COPY into staging
            # tables, then the acknowledgement after commit); a pool would only add a hand-over per batch.
            self._conn = dedicated(self.config.database_url, timeout=5, application_name=self.config.client_id)
        return self._conn

    def _take(self) -> list[Received]:
        """Up to ``batch_max`` messages or ``batch_max_bytes`` of payload, waiting at most ``flush_s`` to fill."""
        deadline = time.monotonic() + self.config.flush_s
        while len(self._queue) < self.config.batch_max and time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.005)
        taken: list[Received] = []
        size = 0
        while self._queue and len(taken) < self.config.batch_max and size < self.config.batch_max_bytes:
            msg = self._queue.popleft()
            taken.append(msg)
            size += len(msg.payload)
        return taken

    def _build(self, received: list[Received]) -> tuple[Batch, list[MessageOutcome]]:
        now = datetime.now(UTC)
        batch = Batch(received_at=now, accounting=self.config.accounting)
        outcomes = []
        conn = self._db()
        self.admission.refresh(conn)
        for msg in received:
            outcome = process_message(msg.topic, msg.payload, now=now, admission=self.admission, conn=conn,
                                      client_id=msg.client_id)
            outcomes.append(outcome)
            batch.add_outcome(outcome)
        return batch, outcomes

    def _commit(self, received: list[Received]) -> None:
        """Write ``received`` durably, retrying through database outages; then acknowledge them."""
        backoff = 0.2
        while True:
            try:
                started = time.monotonic()
                batch, outcomes = self._build(received)
                write_batch(self._db(), batch)
                break
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                metrics.DB_ERRORS.inc()
                log.warning("database unavailable; batch kept, not acknowledged",
                            extra={"error": str(exc).strip()[:200], "messages": len(received)})
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        elapsed = time.monotonic() - started
        self._acknowledge(received)
        self._confirm(received)
        self._record(batch, outcomes, elapsed)

    def _confirm(self, received: list[Received]) -> None:
        """Tell each publisher that numbered its messages which of them are now stored (rows or dead letter).

        One QoS 1 message per device and batch on ``cityos/confirm/v1/{device_id}``, which only that device
        may read: ``{"seq": [...]}``. The device is the topic's (the broker lets a device publish only its
        own topics, so nobody is told about another's messages).
        """
        by_device: dict[str, list[int]] = {}
        for msg in received:
            if msg.seq is None or not msg.topic.startswith(TOPIC_PREFIX):
                continue
            parts = msg.topic.split("/")
            if len(parts) != 5 or not is_valid_device_id(parts[3]) or not msg.seq.isdigit() or len(msg.seq) > 18:
                continue
            by_device.setdefault(parts[3], []).append(int(msg.seq))
        for device_id, seqs in by_device.items():
            self.client.publish(confirm_topic(device_id), json.dumps({"seq": seqs}, separators=(",", ":")), qos=1)

    def _acknowledge(self, received: list[Received]) -> None:
        generation = self._generation
        acknowledge_all(self.client, [msg.mid for msg in received if msg.generation == generation])
        self.committed_messages += len(received)

    def _record(self, batch: Batch, outcomes: list[MessageOutcome], elapsed: float) -> None:
        """Update the metrics once per batch (per-message updates would cost more than parsing)."""
        metrics.BATCH_SECONDS.observe(elapsed)
        for table, rows in batch.rows.items():
            metrics.ROWS_WRITTEN.labels(table).inc(len(rows))
        reasons = Counter(letter.reason for letter in batch.dead_letters)
        for reason, count in reasons.items():
            metrics.DEAD_LETTERS.labels(reason).inc(count)
        messages: Counter[str] = Counter()
        readings: Counter[str] = Counter()
        newest = None
        for outcome in outcomes:
            messages[outcome.domain or "unknown"] += 1
            if outcome.readings:
                readings[outcome.domain or "unknown"] += outcome.readings
            if outcome.newest_time is not None and (newest is None or outcome.newest_time > newest):
                newest = outcome.newest_time
        for domain, count in messages.items():
            metrics.MESSAGES.labels(domain).inc(count)
        for domain, count in readings.items():
            metrics.READINGS.labels(domain).inc(count)
        if newest is not None:
            metrics.LAG_SECONDS.observe(max(0.0, time.time() - newest))
        metrics.BUFFERED.set(len(self._queue))

    def run(self) -> None:
        """Consume until :meth:`stop`; then flush, acknowledge and disconnect (ending the session if leaving)."""
        self._connect_mqtt()
        try:
            if self.config.mode == "drain":
                self._end_session()
                return
            while not self._stop.is_set():
                received = self._take()
                if received:
                    self._commit(received)
            # Graceful shutdown: commit and acknowledge what is held. Unless the worker leaves for good,
            # the subscription stays in the persistent session (unsubscribing would make the broker drop
            # what arrives while no worker runs); anything received after this point is not acknowledged
            # and the broker delivers it again when a worker reconnects.
            self._flush_held()
            if self._leave:
                self._end_session()
        finally:
            if not self.ended:
                self.client.disconnect()
            self.client.loop_stop()
            if self._conn is not None:
                self._conn.close()

    def _flush_held(self) -> None:
        held = len(self._queue)
        while held > 0:
            batch = [self._queue.popleft() for _ in range(min(held, self.config.batch_max))]
            held -= len(batch)
            self._commit(batch)

    def _end_session(self, connect_timeout: float = 20.0) -> None:
        """Unsubscribe, store what the session still holds, then disconnect with session expiry 0.

        Gives up (the session stays, with its messages) if the connection drops or another client takes
        the id over: ending a session whose messages were not all stored would lose them.
        """
        generation = self._generation
        deadline = time.monotonic() + connect_timeout
        while self._session_present is None and time.monotonic() < deadline and not self._lost.is_set():
            time.sleep(0.05)
        if self._session_present is None:
            log.warning("could not reach the broker to end the session", extra={"client_id": self.config.client_id})
            return
        if self._leave and not self._lost.is_set():
            self.client.unsubscribe(self.share_filter)
        while not self._lost.is_set():
            received = self._take()
            if received:
                self._commit(received)
                continue
            quiet = time.monotonic() - self._last_message >= QUIET_S
            if self._unsubscribed.is_set() and quiet and not self._queue:
                break
            time.sleep(0.02)
        if self._lost.is_set() or self._generation != generation:
            log.warning("session not ended: the connection was lost or taken over",
                        extra={"client_id": self.config.client_id})
            return
        props = Properties(PacketTypes.DISCONNECT)
        props.SessionExpiryInterval = 0
        self.client.disconnect(properties=props)
        self.ended = True
        log.info("ingest session ended", extra={"client_id": self.config.client_id,
                                                "messages": self.committed_messages})


def run_worker(config: WorkerConfig) -> bool:
    """Run one worker in this process until SIGTERM or SIGINT (keep the session) or SIGUSR1 (leave for good).

    Returns False if it was asked to leave but could not end its session (it stays for a sweep to drain).
    """
    worker = IngestWorker(config)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop())
    signal.signal(signal.SIGUSR1, lambda *_: worker.leave())
    worker.run()
    return worker.ended or not worker.leaving


def drain_session(database_url: str, mqtt_url: str, client_id: str, group: str = "cityos-ingest") -> int | None:
    """Resume the session ``client_id`` of a worker that no longer exists, store what it holds and end it.

    Returns the messages stored, or None when the session could not be ended (the broker was not
    reached, or a live worker took the id over: then the session is that worker's again).
    """
    from cityos.platform.settings import get_settings

    worker = IngestWorker(WorkerConfig(database_url, mqtt_url, client_id, group=group, mode="drain",
                                       accounting=get_settings().ingest_accounting))
    worker.run()
    return worker.committed_messages if worker.ended else None
