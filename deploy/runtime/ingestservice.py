"""The MQTT ingest workers (``cityos ingest --workers N``), run as one supervised daemon by the local runtime.

``cityos ingest`` exits when one of its workers dies; the supervisor
(:mod:`cityos.deploy.runtime.supervise`) then starts it again with backoff."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cityos.deploy.runtime.component import ComponentStatus, supervisor_detail
from cityos.deploy.runtime.process import read_pid, spawn, stop_pid
from cityos.deploy.runtime.state import StateDir
from cityos.deploy.runtime.supervise import read_status, supervised


class IngestService:
    """Ingest workers sharing the broker's stream."""

    name = "ingest"
    external = False

    def __init__(self, state: StateDir, env: dict[str, str], workers: int = 2):
        self.state = state
        self.env = env
        self.workers = workers
        self.pidfile = state.pidfile("ingest")
        self.status_file = state.run / "ingest.supervisor.json"
        self.logfile = state.logs / "ingest.log"

    def up(self) -> None:
        if read_pid(self.pidfile) is None:
            argv = [sys.executable, "-m", "cityos.platform.cli", "ingest", "--workers", str(self.workers)]
            self.status_file.unlink(missing_ok=True)
            spawn(supervised(argv, self.name, self.status_file, grace_s=25), self.pidfile, self.logfile,
                  env={**os.environ, **self.env})

    def down(self) -> bool:
        return stop_pid(self.pidfile, timeout=30)

    def status(self) -> ComponentStatus:
        running = read_pid(self.pidfile) is not None
        detail: dict[str, object] = {"workers": self.workers}
        supervisor = read_status(self.status_file) if running else None
        if supervisor:
            detail.update(supervisor_detail(supervisor))
        healthy = running and (supervisor is None or supervisor.get("state") == "running")
        detail["sessions"] = self.sessions()
        if detail["sessions"].get("orphaned"):
            healthy = False  # a session nobody reads takes its share of the stream until it is drained
        return ComponentStatus(self.name, "local" if running else "stopped", running, healthy, detail=detail)

    def sessions(self) -> dict[str, object]:
        """The ingest sessions the broker holds for this platform's workers (running instances, orphans)."""
        from cityos.ingest.sessions import overview

        url = self.env.get("CITYOS_DATABASE_URL", "")
        if not url:
            return {"error": "no database configured"}
        try:
            return overview(url)
        except Exception as exc:  # status must show the rest of the platform
            return {"error": str(exc).strip()[:200]}

    def log_path(self) -> Path | None:
        return self.logfile
