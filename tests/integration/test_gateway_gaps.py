"""Gaps from the gateway (issue 17, item 2): readings lost between the gateway and storage are listed per
stream by ``cityos devices gaps`` and come back, closing the gap, when staff ask the gateway to resend.

Against the real broker, ingest worker and database, with the gateway as a real process.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from edge_gateway import health_gateway
from publisher import Publisher
from test_broker_access import Session
from typer.testing import CliRunner

from cityos.ingest.gateway.outbox import Outbox
from cityos.ingest.topics import command_topic
from cityos.platform import consent
from helpers import hours_ago, wait_for

pytestmark = pytest.mark.windowed  # reading times are relative to now

DEVICE = "gap-wear-01"
SUBJECT = "gap-resident-01"
TOPIC = f"cityos/v1/health/{DEVICE}/readings"
BASE = hours_ago(6)


@pytest.fixture()
def gateway(database_url, test_broker, register, workers, tmp_path):
    """A configured, not yet started gateway process of a health device with consent, and its outbox path."""
    password = register(DEVICE, "health", owner_subject=SUBJECT)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from telemetry.health_readings where device_id = %s", (DEVICE,))
        conn.execute("delete from core.stream_gaps where device_id = %s", (DEVICE,))
        conn.execute("delete from core.stream_sequences where device_id = %s", (DEVICE,))
        consent.grant(conn, SUBJECT, "health", "services", "test")
    # the outbox keeps sent readings 7 days / 16 MB (the defaults): what a resend request needs
    # no wait for the workers' consent cache: tests run them with CITYOS_INGEST_ADMISSION_REFRESH_S=0.2
    process = health_gateway(tmp_path, DEVICE, password, test_broker.port, "phone-app-token-0123456789")
    yield process
    process.stop()


def _enqueue(path: Path, count: int) -> None:
    """``count`` readings enter the outbox as the adapter puts them (numbers 1..count, in time order)."""
    box = Outbox(path, max_bytes=10_000_000)
    box.put_many([(TOPIC, (BASE + timedelta(seconds=n)).timestamp(), {"heart_rate_bpm": 60 + n % 50}, 0, True, None)
                  for n in range(count)])
    box.close()


def _lose(path: Path, first: int, last: int, *, kept: bool) -> None:
    """Take readings ``first..last`` out of the outbox's queue before they are sent. ``kept``: as the gateway
    does once a message has left it (acknowledged, confirmed) - so what a broker lost after its PUBACK is
    still held for a resend; otherwise they are gone from the gateway too."""
    with sqlite3.connect(path) as db:
        if kept:
            db.execute("insert into kept (topic, sn, t, priority, body, size, kept_at) select topic, sn, t, priority,"
                       " body, size, ? from readings where sn between ? and ?", (time.time(), first, last))
        db.execute("delete from readings where sn between ? and ?", (first, last))


def _stored(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("select count(*) from telemetry.health_readings where device_id = %s",
                            (DEVICE,)).fetchone()[0]


def _cli(args: list[str], database_url: str, test_broker, monkeypatch) -> str:
    from cityos.platform.cli import app
    from cityos.platform.settings import get_settings

    monkeypatch.setenv("CITYOS_DATABASE_URL", database_url)
    monkeypatch.setenv("CITYOS_MQTT_URL", test_broker.url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, args, catch_exceptions=False)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return result.output


def _gaps(database_url: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("select first_sn, last_sn, closed_at is not null from core.stream_gaps"
                            " where device_id = %s order by first_sn, id", (DEVICE,)).fetchall()


def test_a_gap_from_readings_deleted_from_the_outbox_is_listed_then_closed_by_a_requested_resend(
        gateway, database_url, test_broker, monkeypatch):
    _enqueue(gateway.outbox, 60)
    _lose(gateway.outbox, 21, 40, kept=True)   # acknowledged, then lost: the gateway still keeps them
    _lose(gateway.outbox, 50, 52, kept=False)  # gone from the gateway as well (as an overflow drops them)
    gateway.start(gateway.endpoint)
    wait_for(lambda: _stored(database_url) == 37, 60, message=lambda: f"{_stored(database_url)} of 37 stored")
    wait_for(lambda: _gaps(database_url) == [(21, 40, False), (50, 52, False)], 10,
             message=lambda: f"gaps {_gaps(database_url)}")

    listed = _cli(["devices", "gaps", "--json"], database_url, test_broker, monkeypatch)
    assert [(g["device_id"], g["stream"], g["first"], g["last"], g["missing"]) for g in json.loads(listed)
            if g["device_id"] == DEVICE] == [(DEVICE, "health", 21, 40, 20), (DEVICE, "health", 50, 52, 3)]

    asked = _cli(["devices", "resend", DEVICE], database_url, test_broker, monkeypatch)
    assert "health 21..40" in asked and "health 50..52" in asked
    wait_for(lambda: _stored(database_url) == 57, 60, message=lambda: f"{_stored(database_url)} of 57 stored")
    wait_for(lambda: _gaps(database_url) == [(21, 40, True), (50, 52, False)], 10,
             message=lambda: f"gaps {_gaps(database_url)}")
    listed = _cli(["devices", "gaps", DEVICE], database_url, test_broker, monkeypatch)
    assert "50..52 (3 missing)" in listed and "21..40" not in listed
    with psycopg.connect(database_url) as conn:
        assert conn.execute("select count(*), count(distinct time) from telemetry.health_readings"
                            " where device_id = %s", (DEVICE,)).fetchone() == (57, 57)


def test_a_device_may_not_publish_commands_nor_read_another_devices(register, test_broker):
    own = test_broker.device_url("hems-cmd-own", register("hems-cmd-own", "hems"))
    register("hems-cmd-other", "hems")
    session = Session(own).connect(clean_start=True)
    try:
        for other in (command_topic("hems-cmd-other"), "cityos/command/v1/+/resend", "cityos/command/#"):
            assert session.subscribe(other).is_failure, other
        assert not session.subscribe(command_topic("hems-cmd-own")).is_failure
    finally:
        session.close()
    with Publisher(own) as device:
        for target in ("hems-cmd-own", "hems-cmd-other"):
            device.publish(command_topic(target), json.dumps({"stream": "hems", "from": 1, "to": 9}), key=target)
        assert device.wait_acked(2)
    assert device.acked == set() and set(device.denied) == {"hems-cmd-own", "hems-cmd-other"}


def _write(database_url: str, device: str, numbers: list[int], at) -> None:
    from cityos.ingest.writer import Batch, write_batch

    batch = Batch(received_at=at)
    batch.add_rows("telemetry.energy_readings", [(hours_ago(1) - timedelta(seconds=n), device, "power_w", 1.0)
                                                 for n in numbers])
    batch.add_sequences((device, "hems"), numbers)
    with psycopg.connect(database_url) as conn:
        write_batch(conn, batch)


def test_a_late_reading_inside_a_gap_closes_it_and_the_rest_stays_open_since_the_gap_opened(database_url):
    device = "hems-gap-split"
    with psycopg.connect(database_url, autocommit=True) as conn:
        for table in ("telemetry.energy_readings", "core.stream_gaps", "core.stream_sequences"):
            conn.execute(f"delete from {table} where device_id = %s", (device,))
    opened, late = hours_ago(2), hours_ago(1)
    _write(database_url, device, [1, 2, 10], opened)
    _write(database_url, device, [1, 2, 10], late)  # redelivered: no new gap
    _write(database_url, device, [5], late)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("select first_sn, last_sn, opened_at, closed_at from core.stream_gaps where device_id = %s"
                            " order by id", (device,)).fetchall()
        highest = conn.execute("select highest from core.stream_sequences where device_id = %s", (device,)).fetchone()
    assert rows == [(3, 9, opened, late), (3, 4, opened, None), (6, 9, opened, None)]
    assert highest == (10,)
