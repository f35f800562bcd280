"""The MQTT ingest workers (``cityos ingest --workers N``), run as one daemon by the local runtime."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cityos.deploy.runtime.component import ComponentStatus
from cityos.deploy.runtime.process import read_pid, spawn, stop_pid
from cityos.deploy.runtime.state import StateDir


class IngestService:
    """Ingest workers sharing the broker's stream."""

    name = "ingest"
    external = False

    def __init__(self, state: StateDir, env: dict[str, str], workers: int = 2):
        self.state = state
        self.env = env
        self.workers = workers
        self.pidfile = state.pidfile("ingest")
        self.logfile = state.logs / "ingest.log"

    def up(self) -> None:
        if read_pid(self.pidfile) is None:
            argv = [sys.executable, "-m", "cityos.platform.cli", "ingest", "--workers", str(self.workers)]
            spawn(argv, self.pidfile, self.logfile, env={**os.environ, **self.env})

    def down(self) -> bool:
        return stop_pid(self.pidfile, timeout=30)

    def status(self) -> ComponentStatus:
        running = read_pid(self.pidfile) is not None
        return ComponentStatus(self.name, "local" if running else "stopped", running, running,
                               detail={"workers": self.workers})

    def log_path(self) -> Path | None:
        return self.logfile
