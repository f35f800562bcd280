"""The edge gateway end to end: phone app -> gateway (outbox) -> real broker -> ingest workers -> database.

Every reading arrives exactly once through a broker outage (``CITYOS_TEST_GATEWAY_OUTAGE_S``,
default 2 minutes; set longer for a soak) and a kill -9 of the gateway in the middle of sending.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from edge_gateway import health_gateway, push

from cityos.platform import consent
from helpers import hours_ago, wait_for

# Times here pass ingest's window relative to now: tests/integration/test_time_windows.py re-runs
# these tests with the clock a year ahead.
pytestmark = pytest.mark.windowed

DEVICE = "gw-wear-01"
SUBJECT = "gw-resident-01"
TOKEN = "phone-app-token-0123456789"
BASE = hours_ago(24)  # within the outbox's and ingest's windows on any day
OUTAGE_S = float(os.environ.get("CITYOS_TEST_GATEWAY_OUTAGE_S", "120"))


def _push(endpoint: str, start: int, count: int, chunk: int = 100) -> None:
    push(endpoint, TOKEN, BASE, start, count, chunk)


def _outbox_rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("select count(*) from readings").fetchone()[0]


def _stored(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        return conn.execute("select count(*), count(distinct time) from telemetry.health_readings "
                            "where device_id = %s and metric = 'heart_rate_bpm'", (DEVICE,)).fetchone()


@pytest.fixture()
def gateway(database_url, test_broker, register, workers, tmp_path, request):
    """The gateway, started; ``[sender]`` settings of its config by indirect parametrisation."""
    password = register(DEVICE, "health", owner_subject=SUBJECT)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from telemetry.health_readings where device_id = %s", (DEVICE,))
        consent.grant(conn, SUBJECT, "health", "services", "test")
    process = health_gateway(tmp_path, DEVICE, password, test_broker.port, TOKEN, **getattr(request, "param", {}))
    # no wait for the workers' consent cache: tests run them with CITYOS_INGEST_ADMISSION_REFRESH_S=0.2
    # (tests/servers.py), less than the gateway takes to start
    process.start()
    yield process
    process.stop()


def test_readings_arrive_once_through_a_broker_outage_and_a_kill_9(gateway, database_url, test_broker):
    endpoint = gateway.endpoint
    _push(endpoint, 0, 500)
    wait_for(lambda: _stored(database_url) == (500, 500), 60, message=lambda: "first readings stored")

    test_broker.stop()
    _push(endpoint, 500, 1000)  # accepted into the outbox while the broker is down
    time.sleep(OUTAGE_S)
    assert _stored(database_url) == (500, 500)
    test_broker.start()
    wait_for(lambda: _stored(database_url) == (1500, 1500), 120, message=lambda: "readings sent after the outage")

    _push(endpoint, 1500, 3000)
    gateway.kill9()  # in the middle of sending the backlog
    left = _outbox_rows(gateway.config.parent / "outbox.db")
    assert 0 < left < 3000, f"{left} readings were waiting at the kill: it did not land mid-backlog"
    gateway.start(endpoint)
    wait_for(lambda: _stored(database_url) == (4500, 4500), 120, message=lambda: "every reading after the restart")
    time.sleep(2)
    assert _stored(database_url) == (4500, 4500)


@pytest.mark.parametrize("gateway", [{"batch_size": 5, "inflight": 8}], indirect=True)
def test_with_several_messages_in_flight_every_reading_is_sent_and_confirmed(gateway, database_url):
    """PUBACKs arrive while the next message is being published: the sender must not deadlock on them."""
    _push(gateway.endpoint, 40_000, 2000, chunk=500)
    wait_for(lambda: _stored_range(database_url, 40_000, 2000) == 2000, 120,
             message=lambda: f"{_stored_range(database_url, 40_000, 2000)} of 2000 stored; "
                             f"{_counters(gateway.outbox)}")
    wait_for(lambda: _outbox_rows(gateway.outbox) == 0, 60,
             message=lambda: f"{_outbox_rows(gateway.outbox)} left unconfirmed; {_counters(gateway.outbox)}")


def _stored_range(url: str, start: int, count: int) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("select count(distinct time) from telemetry.health_readings where device_id = %s"
                            " and metric = 'heart_rate_bpm' and time >= %s and time < %s",
                            (DEVICE, BASE + timedelta(seconds=start), BASE + timedelta(seconds=start + count))
                            ).fetchone()[0]


def _awaiting_confirmation(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("select count(*) from readings where sent = 2").fetchone()[0]


def test_readings_the_broker_acknowledged_before_the_workers_returned_are_resent_until_confirmed(
        gateway, workers, test_broker, database_url):
    """The broker-restart race: Mosquitto does not restore the workers' shared subscription, so what it
    acknowledges before they subscribe again is dropped. Here the workers come back 10 s after the broker.

    The local broker starts with the ingest gate closed (devices are refused until a worker subscribes);
    a broker restarted without that step (a production container restarted by Docker alone) has it
    open, as here: confirmation must hold without the gate."""
    from publisher import publish_once

    from cityos.ingest.dynsec import CONTROL_TOPIC, open_gate_payload

    endpoint, outbox = gateway.endpoint, gateway.config.parent / "outbox.db"
    _push(endpoint, 30_000, 50)
    wait_for(lambda: _stored_range(database_url, 30_000, 50) == 50, 60, message=lambda: "first readings")
    workers.stop()
    test_broker.stop()
    test_broker.start()
    restarted = time.monotonic()
    assert publish_once(test_broker.url, CONTROL_TOPIC, open_gate_payload())[0]
    _push(endpoint, 30_050, 300)
    # The broker acknowledges (and drops: no subscriber) while no worker runs; the gateway keeps the readings.
    wait_for(lambda: _awaiting_confirmation(outbox) > 0, 30, message=lambda: "no PUBACK while the workers were away")
    time.sleep(max(0.0, 10 - (time.monotonic() - restarted)))
    assert _stored_range(database_url, 30_050, 300) == 0
    workers.start()
    wait_for(lambda: _stored_range(database_url, 30_050, 300) == 300, 120,
             message=lambda: f"{_stored_range(database_url, 30_050, 300)} of 300 stored")
    wait_for(lambda: _outbox_rows(outbox) == 0, 60, message=lambda: f"{_outbox_rows(outbox)} left unconfirmed")
    wait_for(lambda: _counters(outbox).get("resent_unconfirmed", 0) > 0, 10,
             message=lambda: f"stored without a resend: the race did not happen ({_counters(outbox)})")


def _counters(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        row = db.execute("select value from state where key = 'status'").fetchone()
    return json.loads(row[0])["counters"] if row else {}


def test_gateway_stays_under_100_mb_resident(gateway):
    _push(gateway.endpoint, 10_000, 2000)
    time.sleep(2)
    assert gateway.rss_mb() < 100


def test_status_shows_the_outbox_and_counters(gateway, tmp_path):
    _push(gateway.endpoint, 20_000, 10)
    shown: list[dict] = []

    def status() -> dict:
        out = subprocess.run([sys.executable, "-m", "cityos.ingest.gateway", "status", "--config",
                              str(gateway.config)], capture_output=True, text=True, check=True).stdout
        shown.append(json.loads(out))
        return shown[-1]

    def shows_all(saved: dict) -> bool:
        return (saved.get("counters", {}).get("health_http_readings", 0) >= 10
                and saved.get("sender", {}).get("connected") is True and saved.get("clock", {}).get("trusted") is True)

    # The gateway saves its status every status_interval_s: wait for a save that shows it all, not a fixed time.
    wait_for(lambda: shows_all(status()), 30, message=lambda: f"last status {shown[-1]}")
