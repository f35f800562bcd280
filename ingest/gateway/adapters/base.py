"""What every adapter is: a settings model (validated from the TOML file) and a long-running task."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from cityos.ingest.gateway.emitter import Sink


class AdapterSettings(BaseModel):
    """Common settings; each adapter module subclasses this as ``Settings`` with ``type: Literal[...]``."""

    model_config = ConfigDict(extra="forbid")

    #: The payload domain the adapter's readings belong to.
    DOMAIN: ClassVar[str] = ""
    type: str
    #: A label for logs, counters and status (defaults to the type).
    name: str = ""

    @property
    def label(self) -> str:
        """``name`` or the adapter type."""
        return self.name or self.type

    def resolve_paths(self, base: Path) -> None:
        """Make relative file paths relative to the configuration file's folder (override if any)."""


def resolve(path: Path | None, base: Path) -> Path | None:
    """``path`` relative to ``base`` unless it is absolute (None stays None)."""
    if path is None:
        return None
    return path if path.is_absolute() else base / path


class Adapter(ABC):
    """A source of readings: ``run()`` produces them into its sink until cancelled."""

    def __init__(self, settings: AdapterSettings, sink: Sink):
        self.settings = settings
        self.sink = sink

    @abstractmethod
    async def run(self) -> None:
        """Produce readings until cancelled (the runner restarts it after an error)."""

    def status(self) -> dict[str, object]:
        """A small summary for ``gateway status``."""
        return {}
