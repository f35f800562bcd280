"""The suite passes on any later day: the tests whose readings go through a window relative to now
(marked ``windowed``) run again here with the wall clock a year ahead.

A fixed date in such a test passes on the day it is written and fails a month later (ingest refuses
readings older than 30 days; the gateway's outbox drops them after 29). libfaketime moves the wall
clock of the test process and of every process it starts (ingest workers, the gateway, its test
broker); the platform's PostgreSQL runs with a clean environment and keeps the real time, which
no windowed rule reads.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from cityos.platform.settings import REPO_ROOT

A_YEAR = 365 * 86400
FAKETIME = {"FAKETIME_DONT_FAKE_MONOTONIC": "1"}  # timeouts and sleeps keep real durations


def _ahead(argv: list[str], **env: str) -> subprocess.CompletedProcess:
    faketime = shutil.which("faketime")
    if faketime is None:
        pytest.fail("faketime is not installed (Debian package faketime; `cityos test` installs it)")
    return subprocess.run([faketime, "-f", "+365d", *argv], cwd=REPO_ROOT, capture_output=True, text=True,
                          env={**os.environ, **FAKETIME, **env}, check=False)


def test_faketime_moves_the_wall_clock_of_python_a_year_ahead():
    shown = _ahead([sys.executable, "-c", "import time; print(time.time())"])
    assert shown.returncode == 0, shown.stderr
    assert abs(float(shown.stdout) - time.time() - A_YEAR) < 60


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_windowed_tests_pass_with_the_clock_a_year_ahead():
    run = _ahead([sys.executable, "-m", "pytest", "-m", "windowed", "-p", "no:cacheprovider", "-q", "-x",
                  "tests/integration"],
                 CITYOS_TEST_DATABASE="cityos_test_a_year_on", CITYOS_TEST_GATEWAY_OUTAGE_S="10")
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "deselected" in run.stdout, run.stdout[-2000:]
