"""The suite passes on any later day: the tests whose readings go through a window relative to now
(marked ``windowed``) run again here with the wall clock a year ahead.

A fixed date in such a test passes on the day it is written and fails a month later (ingest refuses
readings older than 30 days; the gateway's outbox drops them after 29). ``tests/clock_ahead`` moves
the wall clock of the test process and of every Python process it starts (ingest workers, the
gateway, API servers); PostgreSQL and Mosquitto keep the real time, which no windowed rule reads.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from cityos.platform.settings import REPO_ROOT

A_YEAR_DAYS = 365
CLOCK_AHEAD = REPO_ROOT / "tests" / "clock_ahead"


def _a_year_ahead(argv: list[str], **env: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(CLOCK_AHEAD), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, *argv], cwd=REPO_ROOT, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": path, "CITYOS_TEST_CLOCK_AHEAD_DAYS": str(A_YEAR_DAYS),
                               **env})


def test_the_clock_of_a_python_process_and_of_its_children_moves_a_year_ahead():
    child = "import datetime, time; print(time.time(), datetime.datetime.now(datetime.UTC).timestamp())"
    shown = _a_year_ahead(["-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}])"])
    assert shown.returncode == 0, shown.stderr
    for value in shown.stdout.split():
        assert abs(float(value) - time.time() - A_YEAR_DAYS * 86400) < 60


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_windowed_tests_pass_with_the_clock_a_year_ahead():
    run = _a_year_ahead(["-m", "pytest", "-m", "windowed", "-p", "no:cacheprovider", "-q", "-x", "tests/integration"],
                        CITYOS_TEST_DATABASE="cityos_test_a_year_on", CITYOS_TEST_GATEWAY_OUTAGE_S="10")
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "deselected" in run.stdout, run.stdout[-2000:]
