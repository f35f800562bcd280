"""The API service (uvicorn), started as a supervised daemon with the connection settings of the stack.

The pid file holds the supervisor's pid (:mod:`cityos.deploy.runtime.supervise`): it restarts the API
with backoff when it dies, and ``cityos status`` shows how often it did."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx

from cityos.deploy.runtime.component import ComponentStatus, supervisor_detail
from cityos.deploy.runtime.process import read_pid, spawn, stop_pid, wait_until
from cityos.deploy.runtime.state import StateDir
from cityos.deploy.runtime.supervise import read_status, supervised
from cityos.platform.settings import Settings


class ApiServer:
    """The platform's HTTP API on ``CITYOS_API_HOST:CITYOS_API_PORT``."""

    name = "api"
    external = False

    def __init__(self, settings: Settings, state: StateDir, env: dict[str, str]):
        self.settings = settings
        self.state = state
        self.env = env
        self.pidfile = state.pidfile("api")
        self.status_file = state.run / "api.supervisor.json"
        self.logfile = state.logs / "api.log"

    @property
    def url(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def up(self) -> None:
        if read_pid(self.pidfile) is None:
            argv = [sys.executable, "-m", "uvicorn", "cityos.platform.api.app:create_app", "--factory",
                    "--host", self.settings.api_host, "--port", str(self.settings.api_port),
                    "--no-access-log", "--no-proxy-headers", "--timeout-graceful-shutdown", "10"]
            self.status_file.unlink(missing_ok=True)
            spawn(supervised(argv, self.name, self.status_file, grace_s=12), self.pidfile, self.logfile,
                  env={**os.environ, **self.env})
        wait_until(self._healthy, 30, "the API service")

    def down(self) -> bool:
        return stop_pid(self.pidfile)

    def status(self) -> ComponentStatus:
        running = read_pid(self.pidfile) is not None
        st = ComponentStatus(self.name, "local" if running else "stopped", running, False, url=self.url)
        if running and (supervisor := read_status(self.status_file)):
            st.detail.update(supervisor_detail(supervisor))
        if running:
            try:
                resp = httpx.get(f"{self.url}/readyz", timeout=5)
                st.healthy = resp.status_code == 200
                st.detail.update(resp.json().get("checks", {}))
            except httpx.HTTPError as exc:
                st.detail["error"] = str(exc)
            st.version = _package_version()
        return st

    def log_path(self) -> Path | None:
        return self.logfile


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cityos")
    except PackageNotFoundError:
        return "dev"
