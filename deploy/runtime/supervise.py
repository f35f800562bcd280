"""A small supervisor for one service of the local runtime: restarts it with backoff, records restarts.

``python -m cityos.deploy.runtime.supervise --name api --status FILE -- CMD...`` runs ``CMD`` and,
whenever it exits without having been asked to stop (a crash, a segfault, ``kill -9``), starts it
again after a delay that doubles from ``BACKOFF_FIRST_S`` up to ``BACKOFF_MAX_S`` while it keeps
failing and falls back once it has run for ``STABLE_S``. SIGTERM or SIGINT stops the service
(SIGTERM, then SIGKILL after ``--grace`` seconds) and then the supervisor. The service is told to
stop if the supervisor itself dies (``PR_SET_PDEATHSIG``), so it is never left without one.

The status file (JSON, rewritten on every change) says what ``cityos status`` shows: the service's
pid, how often it was restarted, its last exit and when.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
STABLE_S = 30.0
PR_SET_PDEATHSIG = 1


@dataclass
class SupervisorStatus:
    """What the status file holds."""

    name: str
    supervisor_pid: int
    pid: int | None = None
    state: str = "starting"  # running, backoff, stopping
    restarts: int = 0
    last_exit: int | None = None
    last_restart_at: str | None = None
    started_at: str = field(default_factory=lambda: _now())

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, path)


def read_status(path: Path) -> dict | None:
    """The status a supervisor last wrote to ``path`` (None if there is none)."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def supervised(argv: list[str], name: str, status_file: Path, grace_s: float) -> list[str]:
    """``argv`` wrapped in a supervisor that writes ``status_file``."""
    return [sys.executable, "-m", "cityos.deploy.runtime.supervise", "--name", name, "--status", str(status_file),
            "--grace", str(grace_s), "--", *argv]


def backoff_s(failures: int) -> float:
    """Seconds to wait before the next start after ``failures`` quick failures in a row (1, 2, ...)."""
    return min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, failures - 1))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _say(name: str, message: str) -> None:
    print(f"{_now()} supervisor[{name}]: {message}", flush=True)


def run(argv: list[str], name: str, status_file: Path, grace_s: float) -> int:
    """Keep ``argv`` running until SIGTERM/SIGINT; the exit code of the supervisor."""
    status = SupervisorStatus(name, os.getpid())
    stopping = False
    child: subprocess.Popen | None = None

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failures = 0
    while not stopping:
        started = time.monotonic()
        child = subprocess.Popen(argv, preexec_fn=_die_with_parent)  # prctl only; no threads here
        status.pid, status.state = child.pid, "running"
        status.write(status_file)
        code = _wait(child, lambda: stopping, grace_s)
        status.last_exit, status.pid = code, None
        if stopping:
            break
        failures = 1 if time.monotonic() - started >= STABLE_S else failures + 1
        delay = backoff_s(failures)
        status.restarts += 1
        status.state, status.last_restart_at = "backoff", _now()
        status.write(status_file)
        _say(name, f"exited with {code} after {time.monotonic() - started:.1f} s; "
                   f"restart {status.restarts} in {delay:.1f} s")
        deadline = time.monotonic() + delay
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.05)
    status.state = "stopped"
    status.write(status_file)
    return 0


def _wait(child: subprocess.Popen, stopping, grace_s: float) -> int:
    """Wait for ``child`` to exit; once a stop is asked, give it ``grace_s`` after SIGTERM, then SIGKILL."""
    while not stopping():
        try:
            return child.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    try:
        return child.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        child.kill()
        return child.wait()


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--status", required=True, type=Path)
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    ns = parser.parse_args(args)
    command = ns.command[1:] if ns.command[:1] == ["--"] else ns.command
    if not command:
        parser.error("no command to supervise")
    return run(command, ns.name, ns.status, ns.grace)


if __name__ == "__main__":
    sys.exit(main())
