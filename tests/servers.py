"""Real servers for tests and benchmarks: a dedicated Mosquitto and ingest worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from cityos.platform.settings import load_settings
from helpers import free_port


class TestBroker:
    """A Mosquitto instance of its own (folder and port), for one test session or benchmark."""

    def __init__(self, home: Path, tls_port: int = 0):
        from cityos.deploy.runtime.broker import Broker
        from cityos.deploy.runtime.state import Secrets, StateDir

        self.port = free_port()
        self.settings = load_settings(home=home, mqtt_port=self.port, mqtt_tls_port=tls_port)
        self.state = StateDir(home)
        self.state.ensure()
        self.broker = Broker(self.settings, self.state, Secrets(self.state))
        self.url = self.broker.service_url()

    def start(self, database_url: str | None = None) -> None:
        """Start it; with ``database_url``, with that database's active devices as accounts."""
        self.broker.up(database_url)

    def stop(self) -> None:
        self.broker.down()

    def sync(self, database_url: str):
        """Make this broker's accounts match the test database (as ``cityos devices sync``): revoked ones go."""
        from cityos.ingest.devices import sync_broker

        with psycopg.connect(database_url) as conn:
            return sync_broker(conn, self.broker.target())

    def provision(self, database_url: str, *new) -> None:
        """Give devices just added (their passwords in hand) their accounts, as the devices API does."""
        from cityos.ingest.devices import provision

        with psycopg.connect(database_url) as conn, conn.transaction():
            provision(conn, self.broker.target(), *new)

    def device_url(self, device_id: str, password: str) -> str:
        return f"mqtt://{device_id}:{password}@127.0.0.1:{self.port}"


class Workers:
    """``cityos ingest --workers N`` as a real process tree writing to the test database.

    ``instance``: its ``CITYOS_INGEST_INSTANCE`` (default ``auto``); ``hostname``: run it in a UTS
    namespace of its own under that host name (``unshare --uts``, root only), as a re-created container.
    """

    def __init__(self, database_url: str, mqtt_url: str, home: Path, workers: int = 1, public_feed: bool = True,
                 instance: str = "auto", hostname: str | None = None):
        self.env = {**os.environ, "CITYOS_DATABASE_URL": database_url, "CITYOS_MQTT_URL": mqtt_url,
                    "CITYOS_HOME": str(home), "CITYOS_LOG_JSON": "true", "CITYOS_INGEST_INSTANCE": instance,
                    "CITYOS_INGEST_ADMISSION_REFRESH_S": "0.2"}  # revocations take effect at once: tests wait on them
        self.workers = workers
        self.public_feed = public_feed
        self.hostname = hostname
        home.mkdir(parents=True, exist_ok=True)
        self.log = home / "ingest.log"
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True, timeout: float = 60.0, settle: float = 0.0) -> None:
        """Start the process tree; with ``wait``, return once every worker's subscription is granted
        (a condition, not a delay: on a busy machine start-up takes what it takes), then ``settle`` s
        (for the public feed's listener, which logs nothing when ready)."""
        offset = self.log.stat().st_size if self.log.exists() else 0
        argv = [sys.executable, "-m", "cityos.platform.cli", "ingest", "--workers", str(self.workers),
                "--public-feed" if self.public_feed else "--no-public-feed"]
        if self.hostname:
            argv = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', self.hostname, *argv]
        self.proc = subprocess.Popen(argv, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if wait:
            self.wait_subscribed(offset, timeout)
        time.sleep(settle)

    def wait_subscribed(self, offset: int = 0, timeout: float = 60.0) -> None:
        """Wait until the log (from ``offset``) shows a granted subscription for each worker."""
        deadline = time.monotonic() + timeout
        while self.log.read_bytes()[offset:].count(b"ingest worker subscribed") < self.workers:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"workers not subscribed in {timeout} s: " \
                                                f"{self.log.read_text()[-3000:]}"
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL the whole process group (parent and workers), as a crash would."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM to the ``cityos ingest`` process only (as the supervisor and ``docker stop`` send it),
        which stops its workers; the exit code."""
        if self.alive():
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode if self.proc else None
