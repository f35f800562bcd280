"""Another process keeping the machine's cores busy, for tests that must hold on a loaded host.

``stress-ng --cpu N`` (Debian ``stress-ng``, installed by ``cityos test``); where it is missing, N Python
processes spinning at the same (normal) priority. Either way the load runs in a process group of its
own and is stopped (SIGKILL to the group) on every exit path.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

#: Set by a caller that already keeps the cores busy (the delivery benchmark): tests add no load of their own.
EXTERNAL = "CITYOS_TEST_CPU_LOAD_EXTERNAL"
_SPIN = "while True:\n    pass\n"


def _command(cpus: int) -> list[str]:
    if stress := shutil.which("stress-ng"):
        return [stress, "--cpu", str(cpus), "--quiet"]
    return ["sh", "-c", " & ".join([f"{sys.executable} -c '{_SPIN}'"] * cpus) + " & wait"]


@contextmanager
def cpu_load(cpus: int | None = None) -> Iterator[subprocess.Popen | None]:
    """Keep ``cpus`` cores (default: all) busy while the block runs; None if the caller already does."""
    if os.environ.get(EXTERNAL):
        yield None
        return
    proc = subprocess.Popen(_command(cpus or os.cpu_count() or 2), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield proc
    finally:
        # SIGKILL to the whole group: a load generator has nothing to tidy up, and every spinner (or
        # stress-ng worker) goes with its parent, not a moment later.
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)  # members left (being reaped by init)?
            except ProcessLookupError:
                break
            time.sleep(0.05)
