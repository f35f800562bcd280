"""The whole local stack in start order: database, broker, API (then CKAN when provisioned)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cityos.apps.build import ensure_built
from cityos.deploy.runtime.apiserver import ApiServer
from cityos.deploy.runtime.broker import Broker
from cityos.deploy.runtime.ckan import Ckan
from cityos.deploy.runtime.component import ComponentStatus
from cityos.deploy.runtime.ingestservice import IngestService
from cityos.deploy.runtime.postgres import Postgres
from cityos.deploy.runtime.simulator import SimulatorService
from cityos.deploy.runtime.state import Secrets, StateDir, state_for, write_env_file
from cityos.platform.db.migrate import migrate
from cityos.platform.settings import Settings, load_settings


@dataclass
class Stack:
    """The local runtime: provisions and runs each component, writes ``local.env``."""

    settings: Settings
    state: StateDir
    secrets: Secrets
    postgres: Postgres = field(init=False)
    broker: Broker = field(init=False)

    def __post_init__(self) -> None:
        self.postgres = Postgres(self.settings, self.state, self.secrets)
        self.broker = Broker(self.settings, self.state, self.secrets)

    @classmethod
    def from_env(cls) -> Stack:
        """The stack described by the environment and the state folder."""
        settings = load_settings()
        state = state_for(settings)
        return cls(settings, state, Secrets(state))

    def connection_env(self) -> dict[str, str]:
        """The URLs services use, as ``CITYOS_*`` variables."""
        return {
            "CITYOS_DATABASE_URL": self.postgres.database_url(),
            "CITYOS_ADMIN_DATABASE_URL": "" if self.postgres.external else self.postgres.admin_url(),
            "CITYOS_MQTT_URL": self.broker.service_url(),
        }

    def api(self) -> ApiServer:
        return ApiServer(self.settings, self.state, self.connection_env())

    def ingest(self) -> IngestService:
        return IngestService(self.state, self.connection_env())

    def simulator(self) -> SimulatorService:
        return SimulatorService(self.state, self.connection_env())

    def ckan(self) -> Ckan:
        admin = os.environ.get("CITYOS_ADMIN_DATABASE_URL", "") if self.postgres.external else self.postgres.admin_url()
        return Ckan(self.settings, self.state, self.secrets, admin)

    def components(self) -> list:
        return [self.postgres, self.broker, self.ingest(), self.api(), self.ckan(), self.simulator()]

    def up(self, report: Callable[[str], None] = print) -> dict[str, float]:
        """Provision and start everything (idempotent); seconds per step."""
        timings: dict[str, float] = {}

        def step(name: str, action: Callable[[], object]) -> None:
            started = time.monotonic()
            action()
            timings[name] = round(time.monotonic() - started, 2)
            report(f"  {name:<12} ready ({timings[name]:.1f} s)")

        step("postgres", self.postgres.up)
        step("migrations", lambda: migrate(self.postgres.database_url()))
        step("mosquitto", lambda: self.broker.up(self.postgres.database_url()))
        if not self.broker.external:
            step("devices", lambda: self.broker.sync_credentials(self.postgres.database_url()))
        env = self.connection_env()
        write_env_file(self.state.local_env, {k: v for k, v in env.items() if v},
                       "connection settings of the local runtime, written by cityos up")
        step("ingest", self.ingest().up)
        step("apps", ensure_built)
        step("api", self.api().up)
        ckan = self.ckan()
        step("ckan", ckan.up)
        write_env_file(self.state.local_env, {k: v for k, v in {**env, **ckan.connection_env()}.items() if v},
                       "connection settings of the local runtime, written by cityos up")
        return timings

    def urls(self) -> dict[str, str]:
        """What ``cityos up`` prints: where each service answers."""
        from cityos.platform.settings import redact_url

        api = self.api().url
        return {
            "API": api,
            "API docs": f"{api}/docs",
            "readiness": f"{api}/readyz",
            "database": redact_url(self.postgres.database_url()),
            "MQTT broker": redact_url(self.broker.service_url()),
            "open data (CKAN)": self.ckan().url,
            "credentials": str(self.state.local_env),
        }

    def down(self) -> list[str]:
        """Stop what the runtime started, in reverse order; names of those stopped."""
        return [c.name for c in reversed(self.components()) if c.down()]

    def status(self) -> list[ComponentStatus]:
        return [c.status() for c in self.components()]
