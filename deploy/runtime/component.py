"""What every locally run server looks like to ``cityos up/down/status/logs``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass
class ComponentStatus:
    """One row of ``cityos status``."""

    name: str
    mode: str  # "local" (started by cityos), "external" (a URL given), "stopped"
    running: bool
    healthy: bool
    version: str = ""
    url: str = ""
    detail: dict[str, object] = field(default_factory=dict)


class Component(Protocol):
    """A server the local runtime can provision, start, stop and inspect."""

    name: str

    @property
    def external(self) -> bool:
        """True when the settings name an existing server: nothing is provisioned or stopped."""

    def up(self) -> None:
        """Provision (idempotently) and start; return when it is ready."""

    def down(self) -> bool:
        """Stop what the runtime started (by pid); keep the data. True if something was stopped."""

    def status(self) -> ComponentStatus:
        """Running state, version and health."""

    def log_path(self) -> Path | None:
        """The component's log file, if it writes one here."""


def supervisor_detail(status: dict) -> dict[str, object]:
    """The lines of a supervised service in ``cityos status``: its pid, restarts and last exit."""
    detail: dict[str, object] = {"pid": status.get("pid"), "restarts": status.get("restarts", 0)}
    if status.get("restarts"):
        detail["last_exit"] = status.get("last_exit")
        detail["last_restart_at"] = status.get("last_restart_at")
    if status.get("state") not in ("running", None):
        detail["supervisor"] = status["state"]
    return detail
