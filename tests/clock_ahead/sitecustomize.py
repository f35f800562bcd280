"""Moves the wall clock of every Python process of a test run ahead by ``CITYOS_TEST_CLOCK_AHEAD_DAYS``.

Python imports ``sitecustomize`` at start-up from the path, so with this folder on ``PYTHONPATH`` the
test process and every Python process it starts (ingest workers, the gateway, API servers) see the
same later wall clock (time-machine patches ``time.time``, ``datetime.now`` and friends; monotonic
clocks and sleeps are untouched). Servers that are not Python (PostgreSQL, Mosquitto) keep the real
time. Used by tests/integration/test_time_windows.py only.
"""

import os

if _days := os.environ.get("CITYOS_TEST_CLOCK_AHEAD_DAYS"):
    from datetime import UTC, datetime, timedelta

    import time_machine

    time_machine.travel(datetime.now(UTC) + timedelta(days=float(_days)), tick=True).start()
