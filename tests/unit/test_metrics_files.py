"""Metric files of processes in different containers sharing one folder never collide."""

from __future__ import annotations

import socket
import subprocess
import sys

SCRIPT = """
import sys
from pathlib import Path
from cityos.platform.metrics import enable_multiprocess
enable_multiprocess(Path(sys.argv[1]))
from prometheus_client import CollectorRegistry, Counter, generate_latest, multiprocess
Counter("cityos_probe_total", "probe").inc(3)
registry = CollectorRegistry()
multiprocess.MultiProcessCollector(registry)
print(generate_latest(registry).decode())
"""


def test_metric_files_are_named_by_host_and_pid_and_still_aggregate(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], check=True, capture_output=True,
                         text=True, env={"PATH": "/usr/bin:/bin"}).stdout
    (name,) = [p.name for p in tmp_path.glob("*.db")]
    assert name.startswith(f"counter_{socket.gethostname().replace('_', '-')}-")
    assert "cityos_probe_total 3.0" in out
