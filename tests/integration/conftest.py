"""Fixtures for ingest tests: a dedicated real Mosquitto and real ingest worker processes.

Ingest tests run their own broker (same Debian mosquitto, own folder and port) so that they can
restart it, and their workers write to the test database only.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from servers import TestBroker, Workers


@pytest.fixture(scope="session")
def test_broker(settings) -> Iterator[TestBroker]:
    # Under the state folder, not /tmp: Mosquitto drops root privileges and must reach its files.
    home = Path(settings.home) / "test-runs" / f"broker-{os.getpid()}"
    shutil.rmtree(home, ignore_errors=True)
    broker = TestBroker(home)
    broker.start()
    yield broker
    broker.stop()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture()
def workers(database_url, test_broker, tmp_path) -> Iterator[Workers]:
    """One running ingest worker for the test (stopped afterwards)."""
    running = Workers(database_url, test_broker.url, tmp_path)
    running.start()
    yield running
    running.stop()


@pytest.fixture()
def register(database_url, test_broker):
    """Register a device in the test database and on the test broker; returns its password."""
    from cityos.ingest.devices import add_device

    def _register(device_id: str, domain: str, **kwargs) -> str:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("delete from core.devices where device_id = %s", (device_id,))
            new = add_device(conn, device_id, domain, **kwargs)
        test_broker.sync(database_url)
        return new.mqtt_password

    return _register
