"""Prometheus metrics shared by the API and the ingest workers (multiprocess mode).

Each process writes its samples into ``<home>/run/metrics`` (``PROMETHEUS_MULTIPROC_DIR``) and
the API's ``/metrics`` aggregates them, so one scrape sees every worker on the host.
"""

from __future__ import annotations

import os
from pathlib import Path


def enable_multiprocess(folder: Path, clean: bool = False) -> None:
    """Point prometheus_client at ``folder``; call before prometheus_client is imported."""
    folder.mkdir(parents=True, exist_ok=True)
    if clean:
        for f in folder.glob("*.db"):
            f.unlink(missing_ok=True)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(folder))


def metrics_dir(home: Path) -> Path:
    """Where this host's processes keep their metric files."""
    return Path(home) / "run" / "metrics"
