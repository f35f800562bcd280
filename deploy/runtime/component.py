"""What every locally run server looks like to ``cityos up/down/status/logs``."""

from __future__ import annotations

from dataclasses import dataclass, field


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


def supervisor_detail(status: dict) -> dict[str, object]:
    """The lines of a supervised service in ``cityos status``: its pid, restarts and last exit."""
    detail: dict[str, object] = {"pid": status.get("pid"), "restarts": status.get("restarts", 0)}
    if status.get("restarts"):
        detail["last_exit"] = status.get("last_exit")
        detail["last_restart_at"] = status.get("last_restart_at")
    if status.get("state") not in ("running", None):
        detail["supervisor"] = status["state"]
    return detail
