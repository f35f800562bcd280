"""Fixtures for ingest tests: a dedicated real Mosquitto and real ingest worker processes.

Ingest tests run their own broker (same Debian mosquitto, own folder and port) so that they can
restart it, and their workers write to the test database only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cityos.platform.settings import load_settings
from helpers import free_port


class TestBroker:
    """A Mosquitto instance for one test session."""

    def __init__(self, home: Path):
        from cityos.deploy.runtime.broker import Broker
        from cityos.deploy.runtime.state import Secrets, StateDir

        self.port = free_port()
        self.settings = load_settings(home=home, mqtt_port=self.port)
        self.state = StateDir(home)
        self.state.ensure()
        self.broker = Broker(self.settings, self.state, Secrets(self.state))
        self.url = self.broker.service_url()

    def start(self) -> None:
        self.broker.up()

    def stop(self) -> None:
        self.broker.down()

    def sync(self, database_url: str) -> None:
        """Write the test database's devices into this broker's files and reload it."""
        from cityos.ingest.devices import sync_broker

        with psycopg.connect(database_url) as conn:
            sync_broker(conn, self.broker.files(), self.broker.secrets.get("MQTT_SERVICE_PASSWORD"))

    def device_url(self, device_id: str, password: str) -> str:
        return f"mqtt://{device_id}:{password}@127.0.0.1:{self.port}"


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


class Workers:
    """``cityos ingest --workers N`` as a real process tree writing to the test database."""

    def __init__(self, database_url: str, mqtt_url: str, home: Path, workers: int = 1):
        self.env = {**os.environ, "CITYOS_DATABASE_URL": database_url, "CITYOS_MQTT_URL": mqtt_url,
                    "CITYOS_HOME": str(home), "CITYOS_LOG_JSON": "true"}
        self.workers = workers
        self.log = home / "ingest.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cityos.platform.cli", "ingest", "--workers", str(self.workers)],
            env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        time.sleep(1.5)  # connect and subscribe
        assert self.proc.poll() is None, self.log.read_text()[-2000:]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL the whole process group (parent and workers), as a crash would."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


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
