"""The cityos edge gateway as a real process for tests: its config, the process, its outbox and phone-app pushes."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from helpers import free_port, wait_for


class GatewayProcess:
    """``cityos gateway run`` as a real process (python -m cityos.ingest.gateway)."""

    def __init__(self, config: Path, log: Path):
        self.config, self.log = config, log
        self.proc: subprocess.Popen | None = None
        self.endpoint = ""

    def start(self, endpoint: str | None = None, timeout: float = 20) -> None:
        self.endpoint = endpoint or self.endpoint
        self.proc = subprocess.Popen([sys.executable, "-m", "cityos.ingest.gateway", "run", "--config",
                                      str(self.config)], stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        wait_for(lambda: _up(self.endpoint), timeout,
                 message=lambda: f"gateway endpoint\n{self.log.read_text()[-2000:]}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM (a graceful stop); SIGKILL if it has not ended within 30 s (a test must not leave it behind)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError(f"the gateway did not stop on SIGTERM\n{self.log.read_text()[-2000:]}") from None

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    @property
    def outbox(self) -> Path:
        return self.config.parent / "outbox.db"

    def outbox_rows(self) -> int:
        """Readings still in the outbox (waiting, in flight or awaiting the platform's confirmation)."""
        with sqlite3.connect(self.outbox) as db:
            return db.execute("select count(*) from readings").fetchone()[0]

    def counters(self) -> dict[str, int]:
        with sqlite3.connect(self.outbox) as db:
            row = db.execute("select value from state where key = 'status'").fetchone()
        return json.loads(row[0])["counters"] if row else {}


def _up(endpoint: str) -> bool:
    try:
        return httpx.post(endpoint, json={}).status_code == 401
    except httpx.HTTPError:
        return False


def health_gateway(folder: Path, device_id: str, password: str, broker_port: int, token: str,
                   batch_size: int = 25, inflight: int = 1, confirm_timeout_s: float = 5) -> GatewayProcess:
    """A gateway (not yet started) for ``device_id`` with the phone-app (health_http) adapter, in ``folder``."""
    (folder / "credentials.json").write_text(json.dumps({"device_id": device_id, "mqtt_username": device_id,
                                                          "mqtt_password": password}))
    (folder / "health-token").write_text(token)
    port = free_port()
    config = folder / "gateway.toml"
    config.write_text(f'''device_id = "{device_id}"
broker_url = "mqtt://127.0.0.1:{broker_port}"
status_interval_s = 1
[outbox]
path = "outbox.db"
[sender]
batch_size = {batch_size}
inflight = {inflight}
linger_s = 0.2
confirm_timeout_s = {confirm_timeout_s}
[[adapters]]
type = "health_http"
listen = "127.0.0.1:{port}"
''')
    process = GatewayProcess(config, folder / "gateway.log")
    process.endpoint = f"http://127.0.0.1:{port}/readings"
    return process


def heart_rates(base: datetime, start: int, count: int) -> list[dict]:
    """Readings ``start`` .. ``start + count - 1``, one a second from ``base``."""
    return [{"t": (base + timedelta(seconds=n)).isoformat(), "heart_rate_bpm": 60 + n % 50}
            for n in range(start, start + count)]


def push(endpoint: str, token: str, base: datetime, start: int, count: int, chunk: int = 100) -> None:
    """Post readings as the phone app does; each batch must be taken into the outbox (202)."""
    for offset in range(start, start + count, chunk):
        n = min(chunk, start + count - offset)
        response = httpx.post(endpoint, json={"batch": heart_rates(base, offset, n)},
                              headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert response.status_code == 202, response.text
        assert response.json() == {"stored": n}
