"""Delivery under load: every reading a cityos gateway took into its outbox is stored exactly once and the
outbox drains (each reading confirmed by the platform), through a broker restart, a 30 s database outage
and a kill -9 of the ingest workers, while another process keeps both cores busy (``stress-ng --cpu 2``).

Each test waits on conditions (readings stored, outbox empty), never on a guessed delay; the only sleeps
are the faults' own durations. ``tests/bench/bench_delivery_under_load.py --runs 20`` repeats them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from edge_gateway import GatewayProcess, health_gateway, push
from load import cpu_load
from publisher import publish_once
from servers import Workers

from cityos.platform import consent
from helpers import hours_ago, wait_for

# Not marked ``windowed`` (re-run a year ahead by test_time_windows.py) although the readings' times are
# relative to now: the same gateway path is re-run there by test_gateway_e2e.py, and a second 30 s outage
# under load would double this module's cost to the suite.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DEVICE = "gw-load-01"
SUBJECT = "gw-load-resident-01"
TOKEN = "phone-app-token-load-0123456789"
BASE = hours_ago(48)  # within the outbox's and ingest's windows on any day
#: Generous bounds for a loaded machine: a timeout here means delivery stalled, not that it was slow.
DRAIN_S = 180


def _stored(url: str) -> tuple[int, int]:
    """(rows, distinct reading times) of the test device."""
    with psycopg.connect(url) as conn:
        return conn.execute("select count(*), count(distinct time) from telemetry.health_readings "
                            "where device_id = %s and metric = 'heart_rate_bpm'", (DEVICE,)).fetchone()


class Feed:
    """The phone app pushing ``count`` readings to the gateway in the background, ``chunk`` at a time at
    ``rate`` readings/s; ``enqueued`` counts those the gateway took into its outbox (202)."""

    def __init__(self, endpoint: str, count: int, rate: float, chunk: int = 10):
        self.endpoint, self.count, self.rate, self.chunk = endpoint, count, rate, chunk
        self.enqueued = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        try:
            for start in range(0, self.count, self.chunk):
                n = min(self.chunk, self.count - start)
                push(self.endpoint, TOKEN, BASE, start, n, chunk=n)
                self.enqueued += n
                # Paced by the clock, not by sleeps that add up: a slow request is caught up.
                time.sleep(max(0.0, started + self.enqueued / self.rate - time.monotonic()))
        except BaseException as exc:  # re-raised by the test in join()
            self.error = exc

    def __enter__(self) -> Feed:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.join()

    def join(self) -> None:
        self.thread.join(DRAIN_S)
        assert not self.thread.is_alive(), f"the phone app is still pushing after {DRAIN_S} s"
        if self.error:
            raise self.error

    def wait_enqueued(self, fraction: float) -> None:
        wait_for(lambda: self.enqueued >= self.count * fraction or self.error, DRAIN_S,
                 message=lambda: f"{self.enqueued} of {self.count} readings pushed")


@pytest.fixture()
def under_load() -> Iterator[None]:
    """Both cores busy (another process) for the whole test, stopped on every exit path."""
    with cpu_load():
        yield


@pytest.fixture()
def edge(under_load, database_url, test_broker, register, tmp_path) -> Iterator[tuple[GatewayProcess, Workers]]:
    """A consented wearable's gateway and one ingest worker, both started on the loaded machine."""
    password = register(DEVICE, "health", owner_subject=SUBJECT)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from telemetry.health_readings where device_id = %s", (DEVICE,))
        consent.grant(conn, SUBJECT, "health", "services", "test")
    # Started after the consent is granted, so the worker's first load of consents already has it.
    workers = Workers(database_url, test_broker.url, tmp_path / "ingest")
    gateway = health_gateway(tmp_path, DEVICE, password, test_broker.port, TOKEN, inflight=4)
    try:
        workers.start(timeout=DRAIN_S)
        gateway.start(timeout=DRAIN_S)
        yield gateway, workers
    finally:
        gateway.stop()
        workers.stop()


def _assert_stored_once_and_confirmed(database_url: str, gateway: GatewayProcess, feed: Feed) -> None:
    """Every enqueued reading stored exactly once, and the outbox empty because the platform confirmed them."""
    assert feed.enqueued == feed.count
    wait_for(lambda: _stored(database_url)[1] >= feed.count, DRAIN_S,
             message=lambda: f"stored (rows, distinct) {_stored(database_url)} of {feed.count}; outbox "
                             f"{gateway.outbox_rows()}; {gateway.counters()}")
    wait_for(lambda: gateway.outbox_rows() == 0, DRAIN_S,
             message=lambda: f"{gateway.outbox_rows()} readings left unconfirmed; {gateway.counters()}")
    assert _stored(database_url) == (feed.count, feed.count), "a reading was stored twice"
    counters = wait_for(lambda: (c := gateway.counters()).get("confirmations") and c, 10)
    assert "confirm_refused" not in counters, counters  # drained by confirmations, not by PUBACKs


def test_gateway_readings_survive_a_broker_restart_under_load(edge, test_broker, database_url, record_property):
    """The broker restarts mid-stream, as a container restarted by Docker alone: its ingest gate opens at
    once, so it acknowledges (and drops) messages before the worker has subscribed again."""
    from cityos.ingest.dynsec import CONTROL_TOPIC, open_gate_payload

    gateway, _ = edge
    with Feed(gateway.endpoint, 1000, rate=150) as feed:
        feed.wait_enqueued(0.3)
        test_broker.stop()
        time.sleep(1)  # the outage itself
        test_broker.start()
        assert publish_once(test_broker.url, CONTROL_TOPIC, open_gate_payload())[0]
    _assert_stored_once_and_confirmed(database_url, gateway, feed)
    record_property("resent_unconfirmed", gateway.counters().get("resent_unconfirmed", 0))


def test_gateway_readings_survive_a_30_s_database_outage_under_load(edge, stack, database_url, record_property):
    if stack.postgres.external:
        pytest.skip("the database is external: the test cannot stop it")
    gateway, workers = edge
    with Feed(gateway.endpoint, 1800, rate=50) as feed:
        feed.wait_enqueued(0.1)
        stack.postgres.stop()
        try:
            time.sleep(30)  # the outage itself
            assert workers.alive(), "the worker died while the database was down"
        finally:
            stack.postgres.start()
    _assert_stored_once_and_confirmed(database_url, gateway, feed)
    record_property("resent_unconfirmed", gateway.counters().get("resent_unconfirmed", 0))


def test_gateway_readings_survive_a_kill_9_of_the_workers_mid_batch_under_load(edge, database_url,
                                                                               record_property):
    gateway, workers = edge
    with Feed(gateway.endpoint, 1000, rate=150) as feed:
        feed.wait_enqueued(0.3)
        wait_for(lambda: _stored(database_url)[0] > 0, DRAIN_S, message=lambda: "nothing stored before the kill")
        workers.kill9()
        workers.start(timeout=DRAIN_S)
    _assert_stored_once_and_confirmed(database_url, gateway, feed)
    record_property("resent_unconfirmed", gateway.counters().get("resent_unconfirmed", 0))
