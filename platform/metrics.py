"""Prometheus metrics shared by the API and the ingest workers (multiprocess mode).

Each process writes its samples into ``<home>/run/metrics`` (``PROMETHEUS_MULTIPROC_DIR``) and
the API's ``/metrics`` aggregates them, so one scrape sees every worker on the host. In production the
API and ingest containers share that folder (a volume); process ids repeat across containers (each has
its own pid 1, 7, ...), so the files are named by host name and pid, never by pid alone.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def process_identifier() -> str:
    """This process's name in the metric files: unique across containers sharing the folder (no ``_``:
    prometheus_client splits file names on it)."""
    return f"{socket.gethostname().replace('_', '-')}-{os.getpid()}"


def enable_multiprocess(folder: Path, clean: bool = False) -> None:
    """Point prometheus_client at ``folder``; call before prometheus_client is imported."""
    folder.mkdir(parents=True, exist_ok=True)
    if clean:
        for f in folder.glob("*.db"):
            f.unlink(missing_ok=True)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(folder))
    from prometheus_client import values

    values.ValueClass = values.MultiProcessValue(process_identifier)


def metrics_dir(home: Path) -> Path:
    """Where this host's processes keep their metric files."""
    return Path(home) / "run" / "metrics"
