"""The demo's device simulator (``cityos simulate``), run as a daemon by ``cityos up --demo``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cityos.deploy.runtime.component import ComponentStatus
from cityos.deploy.runtime.process import read_pid, spawn, stop_pid
from cityos.deploy.runtime.state import StateDir


class SimulatorService:
    """500 HEMS homes, 50 vehicles and 100 wearables publishing through the broker."""

    name = "simulator"
    external = False

    def __init__(self, state: StateDir, env: dict[str, str]):
        self.state = state
        self.env = env
        self.pidfile = state.pidfile("simulator")
        self.logfile = state.logs / "simulator.log"

    def up(self) -> None:
        if read_pid(self.pidfile) is None:
            spawn([sys.executable, "-m", "cityos.platform.cli", "simulate"], self.pidfile, self.logfile,
                  env={**os.environ, **self.env})

    def down(self) -> bool:
        return stop_pid(self.pidfile)

    def status(self) -> ComponentStatus:
        running = read_pid(self.pidfile) is not None
        # Optional (demo only): not running is not unhealthy.
        return ComponentStatus(self.name, "local" if running else "stopped", running, True,
                               detail={} if running else {"note": "demo simulator not started (cityos up --demo)"})

    def log_path(self) -> Path | None:
        return self.logfile
