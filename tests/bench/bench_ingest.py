"""Ingest throughput, durable end to end, beside baselines measured in the same run.

Run with the local runtime up (``./cityos up``):  ``.venv/bin/python tests/bench/bench_ingest.py``

It starts its own Mosquitto (same binary and settings as the platform's) and writes to a
database ``cityos_bench`` on the platform's server (``CITYOS_BENCH_NAME=x``: ``cityos_x``, and its own
folder, so two benchmarks on a shared server do not collide). Figures:
- broker alone: QoS 1 messages drained from persistent sessions by 1 and 2 subscriber processes
  that discard them;
- COPY alone: the workers' own write path (``write_batch``) without MQTT, from 1 and 2 processes;
- end to end: messages queued in the workers' persistent sessions (published once every worker's
  subscription is granted, a condition, not a delay), then drained by 1 and 2 worker
  processes until every row is committed (messages/s and readings/s), for single-reading
  messages and for batches of 1,000 readings. Progress is read from the workers' committed-row
  counter (cheap), and the rows are counted in the database at the end.
Each run ends its persistent sessions, so no run drains another's messages.
The machine is shared and noisy: compare the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import struct
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from publisher import Publisher
from servers import TestBroker, Workers

from cityos.ingest.broker_auth import INGEST_GROUP
from cityos.ingest.devices import add_device
from cityos.ingest.sessions import worker_client_id
from cityos.ingest.writer import Batch, write_batch
from cityos.platform.db.migrate import migrate
from cityos.platform.metrics import metrics_dir
from cityos.platform.mqtt import BrokerAddress, new_client
from cityos.platform.settings import load_settings

DEVICES = 100
BENCH_NAME = os.environ.get("CITYOS_BENCH_NAME", "bench")
BENCH_DB = f"cityos_{BENCH_NAME}"
BASE = datetime.now(UTC) - timedelta(days=2)


def bench_database(settings) -> str:
    owner = settings.database_url.split("://", 1)[1].split(":", 1)[0]
    admin = settings.admin_database_url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(BENCH_DB)))
        conn.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(BENCH_DB), sql.Identifier(owner)))
    with psycopg.connect(admin.rsplit("/", 1)[0] + "/" + BENCH_DB, autocommit=True) as conn:
        conn.execute("create extension timescaledb")
        conn.execute("create extension postgis")
    url = settings.database_url.rsplit("/", 1)[0] + "/" + BENCH_DB
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(DEVICES):
            add_device(conn, f"hems-b{i:03d}", "hems")
    return url


def single_payloads(n: int, offset: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        device = f"hems-b{i % DEVICES:03d}"
        t = BASE + timedelta(milliseconds=offset + i)
        payload = json.dumps({"t": t.isoformat(), "power_w": i % 5000}).encode()
        out.append((f"cityos/v1/hems/{device}/readings", payload))
    return out


def batch_payloads(n_messages: int, size: int, offset: int) -> list[tuple[str, bytes]]:
    out = []
    for m in range(n_messages):
        device = f"hems-b{m % DEVICES:03d}"
        start = offset + m * size
        readings = [{"t": (BASE + timedelta(milliseconds=start + j)).isoformat(), "power_w": j} for j in range(size)]
        out.append((f"cityos/v1/hems/{device}/readings", json.dumps({"batch": readings}).encode()))
    return out


def _publish_part(url: str, items: list[tuple[str, bytes]]) -> None:
    with Publisher(url, max_inflight=2000) as pub:
        for i, (topic, payload) in enumerate(items):
            pub.publish(topic, payload, key=i)
        if not pub.wait_acked(len(items), timeout=600):
            raise RuntimeError("publisher did not get every PUBACK")


def publish_all(url: str, items: list[tuple[str, bytes]], processes: int = 2) -> float:
    """Publish with QoS 1 from several processes; seconds until every PUBACK arrived."""
    parts = [items[i::processes] for i in range(processes)]
    ctx = multiprocessing.get_context("fork")
    started = time.perf_counter()
    procs = [ctx.Process(target=_publish_part, args=(url, part)) for part in parts]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    if any(p.exitcode != 0 for p in procs):
        raise RuntimeError("a publisher process failed (see above): not every message was acknowledged")
    return time.perf_counter() - started


def _connect(address: BrokerAddress, client_id: str, *, clean_start: bool, expiry_s: int, on_connect=None,
             on_message=None):
    """A started paho client of ``client_id`` whose session lasts ``expiry_s`` after it disconnects."""
    client = new_client(address, client_id)
    client.on_connect = on_connect
    client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = expiry_s
    client.connect(address.host, address.port, clean_start=clean_start, properties=props)
    client.loop_start()
    return client


def _close(client) -> None:
    client.disconnect()
    client.loop_stop()


def _discard(url: str, client_id: str, counts, slot: int, stop) -> None:
    """A subscriber process that acknowledges and discards; its running count goes to ``counts[slot]``."""
    address = BrokerAddress.parse(url)
    received = [0]

    def on_message(_c, _u, _m) -> None:
        received[0] += 1

    client = _connect(address, client_id, clean_start=False, expiry_s=3600, on_message=on_message)
    while not stop.is_set():
        counts[slot] = received[0]
        time.sleep(0.005)
    _close(client)


def _subscribe_offline(url: str, client_id: str, group: str) -> None:
    """Create a persistent session in the shared group, then leave it offline (messages queue in it)."""
    address = BrokerAddress.parse(url)
    subscribed = threading.Event()
    codes = []

    def on_subscribe(_c, _u, _mid, reason_codes, _p) -> None:
        codes.extend(reason_codes)
        subscribed.set()

    def on_connect(client, *_args) -> None:
        client.on_subscribe = on_subscribe
        client.subscribe(f"$share/{group}/cityos/v1/#", qos=1)

    client = _connect(address, client_id, clean_start=True, expiry_s=3600, on_connect=on_connect)
    try:
        if not subscribed.wait(30):
            raise RuntimeError(f"{client_id}: no SUBACK within 30 s")
        if codes[0].is_failure:  # e.g. a group the broker's rights do not grant: nothing would ever arrive
            raise RuntimeError(f"{client_id}: subscription refused: {codes[0]}")
    finally:
        _close(client)


def forget_sessions(url: str, client_ids: list[str]) -> None:
    """End persistent sessions, so a finished run's subscriptions do not collect the next runs' messages."""
    address = BrokerAddress.parse(url)
    for client_id in client_ids:
        _close(_connect(address, client_id, clean_start=True, expiry_s=0))


def broker_alone(url: str, items: list[tuple[str, bytes]], subscribers: int = 1) -> float:
    """Messages/s that QoS 1 subscriber processes which discard (acknowledging at once) drain from their
    persistent sessions: the workers' measurement with everything but MQTT taken away."""
    ids = [f"bench-discard-{subscribers}-{i}" for i in range(subscribers)]
    # The ingest group (the only one the service account may join); every earlier run ended its sessions,
    # so none takes a share.
    for client_id in ids:
        _subscribe_offline(url, client_id, INGEST_GROUP)
    publish_all(url, items)
    ctx = multiprocessing.get_context("fork")
    counts = ctx.Array("q", subscribers, lock=False)
    stop = ctx.Event()
    started = time.perf_counter()
    procs = [ctx.Process(target=_discard, args=(url, cid, counts, i, stop)) for i, cid in enumerate(ids)]
    try:
        for proc in procs:
            proc.start()
        deadline = started + 600
        while sum(counts) < len(items):
            if time.perf_counter() > deadline or not any(p.is_alive() for p in procs):
                raise RuntimeError(f"the discarding subscribers got {sum(counts)} of {len(items)} messages")
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
        forget_sessions(url, ids)
    return sum(counts) / elapsed


def _copy_part(url: str, offset: int, rows: int, ready) -> None:
    batches = []
    for start in range(0, rows, 5000):
        batch = Batch()
        batch.add_rows("telemetry.energy_readings", [
            (BASE + timedelta(milliseconds=offset + start + j), f"hems-b{(start + j) % DEVICES:03d}", "power_w",
             float(j)) for j in range(min(5000, rows - start))])
        batches.append(batch)
    with psycopg.connect(url) as conn:
        ready.wait()  # rows made and connected: time the writes only
        for batch in batches:
            write_batch(conn, batch)


def copy_alone(url: str, rows: int, processes: int = 1, offset: int = 10**9) -> float:
    """Rows/s through the workers' write path (COPY in batches of 5,000) without MQTT, from ``processes``."""
    ctx = multiprocessing.get_context("fork")
    share = rows // processes
    ready = ctx.Barrier(processes + 1)
    procs = [ctx.Process(target=_copy_part, args=(url, offset + i * share, share, ready)) for i in range(processes)]
    for proc in procs:
        proc.start()
    ready.wait()
    started = time.perf_counter()
    for proc in procs:
        proc.join()
    return share * processes / (time.perf_counter() - started)


def window(offset_ms: int, readings: int) -> tuple[datetime, datetime]:
    """The observation times of a run's readings (each run has its own, so its rows can be counted apart)."""
    return BASE + timedelta(milliseconds=offset_ms), BASE + timedelta(milliseconds=offset_ms + readings)


def rows_in(conn: psycopg.Connection, times: tuple[datetime, datetime]) -> int:
    """Rows of one run in the table (each run has its own observation times)."""
    return conn.execute("select count(*) from telemetry.energy_readings where time >= %s and time < %s",
                        times).fetchone()[0]


def rows_committed(folder: Path, last: float = 0.0) -> float:
    """Energy rows the workers have committed, from their metric files (``rows_written`` is counted after
    each commit). Reading a few small files is cheap; counting a million rows 20 times a second would take
    a core from the system being measured.

    A worker that has just started may have created its file without filling it yet (prometheus_client
    then fails to read it); that reading is skipped and ``last`` returned, the next one sees the file whole.
    """
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))
    try:
        return sum(sample.value for metric in registry.collect() for sample in metric.samples
                   if sample.name == "cityos_ingest_rows_written_total"
                   and sample.labels.get("table") == "telemetry.energy_readings")
    except (struct.error, ValueError, OSError):
        return last


def end_to_end(db_url: str, broker: TestBroker, home: Path, workers: int, items: list[tuple[str, bytes]],
               readings: int, times: tuple[datetime, datetime], accounting: bool = True) -> tuple[float, float]:
    """Queue ``items`` in the workers' persistent sessions, then time the drain to committed rows.

    The rate is taken from the first committed row to the last, so process start-up is not counted.
    ``accounting`` False: the workers run with ``CITYOS_INGEST_ACCOUNTING=false`` (no ledger, no roll-up marks).
    """
    running = Workers(db_url, broker.url, home, workers)
    running.env["CITYOS_INGEST_ACCOUNTING"] = "true" if accounting else "false"
    folder = metrics_dir(home)
    try:
        # Wait until every worker's subscription is granted (the session holds the shared subscription), not
        # a fixed time: on a loaded machine start-up takes longer, and a message published before that would
        # match no subscriber and be dropped.
        running.start()
        running.kill9()  # the sessions (and their shared subscription) persist in the broker
        before = rows_committed(folder)
        publish_all(broker.url, items)
        running.start(wait=False)
        first_seen, first_count, count = None, 0, 0.0
        deadline = time.perf_counter() + 600
        while (count := rows_committed(folder, count + before) - before) < readings:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{count:.0f} of {readings} rows committed after 600 s")
            if not running.alive():
                raise RuntimeError(f"the ingest process exited: {running.log.read_text()[-2000:]}")
            if first_seen is None and count > 0:
                first_seen, first_count = time.perf_counter(), count
            time.sleep(0.01)
        finished = time.perf_counter()
    finally:
        running.stop()  # also on every failure: no ingest process is left running
    with psycopg.connect(db_url) as conn:
        stored = rows_in(conn, times)
    if stored != readings:
        raise RuntimeError(f"{stored} rows stored, {readings} expected")
    forget_sessions(broker.url, [worker_client_id(0, i) for i in range(workers)])
    if first_seen is None:
        raise RuntimeError("the drain finished before it could be observed; use more messages")
    elapsed = finished - first_seen
    share = (readings - first_count) / readings
    return len(items) * share / elapsed, (readings - first_count) / elapsed


def accounting_cost(db_url: str, broker: TestBroker, home: Path, args, offset: int = 2 * 10**7) -> None:
    """End to end with 1 worker, with and without the ledger and roll-up marks (``CITYOS_INGEST_ACCOUNTING``),
    alternating so that a noisy neighbour hits both alike; prints each pair and the ratio of the medians."""
    for name, make, readings_per in (("single readings", lambda o: single_payloads(args.messages, o), 1),
                                     ("batches of 1,000", lambda o: batch_payloads(args.batches, 1000, o), 1000)):
        count = args.messages if readings_per == 1 else args.batches
        rates: dict[bool, list[float]] = {True: [], False: []}
        for round_ in range(args.rounds):
            for accounting in (False, True):
                offset += 10**7
                _, rds = end_to_end(db_url, broker, home / f"acc-{accounting}-{round_}", 1, make(offset),
                                    count * readings_per, window(offset, count * readings_per), accounting)
                rates[accounting].append(rds)
        on, off = sorted(rates[True])[len(rates[True]) // 2], sorted(rates[False])[len(rates[False]) // 2]
        print(f"ledger and roll-up marks, {name}, 1 worker: with {on:,.0f} readings/s, without {off:,.0f} "
              f"readings/s (runs with: {', '.join(f'{r:,.0f}' for r in rates[True])}; without: "
              f"{', '.join(f'{r:,.0f}' for r in rates[False])}); cost {1 - on / off:+.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000, help="single-reading messages per run")
    parser.add_argument("--batches", type=int, default=1000, help="messages of 1,000 readings per run")
    parser.add_argument("--accounting-only", action="store_true",
                        help="only the cost of the ledger and roll-up marks: 1 worker, with and without, alternating")
    parser.add_argument("--rounds", type=int, default=2, help="with/without pairs for --accounting-only")
    args = parser.parse_args()
    settings = load_settings()
    db_url = bench_database(settings)
    home = Path(settings.home) / "test-runs" / BENCH_NAME
    shutil.rmtree(home, ignore_errors=True)
    broker = TestBroker(home)
    broker.start(db_url)  # the bench devices' accounts, from the registry
    try:
        if args.accounting_only:
            accounting_cost(db_url, broker, home, args)
            return
        print(f"machine: {os.cpu_count()} cores; {args.messages} single messages, "
              f"{args.batches} x 1,000-reading batches")
        offset = 0
        for workers in (1, 2):
            offset += 10**6
            base_broker = broker_alone(broker.url, single_payloads(args.messages, offset), workers)
            print(f"baseline broker alone, {workers} discarding subscriber(s) (QoS 1): {base_broker:,.0f} msg/s")
            offset += 10**6
            base_copy = copy_alone(db_url, 500_000, workers, offset)
            print(f"baseline COPY alone, {workers} process(es) (write_batch, 5,000 rows per transaction): "
                  f"{base_copy:,.0f} rows/s")
            offset += 10**6
            msgs, rds = end_to_end(db_url, broker, home / f"w{workers}s", workers,
                                   single_payloads(args.messages, offset), args.messages,
                                   window(offset, args.messages))
            print(f"end to end, single readings, {workers} worker(s): {msgs:,.0f} msg/s "
                  f"({msgs / base_broker:.2f} x broker alone, {rds / base_copy:.2f} x COPY alone)")
            offset += 10**6
            msgs, rds = end_to_end(db_url, broker, home / f"w{workers}b", workers,
                                   batch_payloads(args.batches, 1000, offset), args.batches * 1000,
                                   window(offset, args.batches * 1000))
            print(f"end to end, batches of 1,000, {workers} worker(s): {msgs:,.0f} msg/s, {rds:,.0f} readings/s "
                  f"({rds / base_copy:.2f} x COPY alone)")
        accounting_cost(db_url, broker, home, args)
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
