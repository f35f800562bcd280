"""SensorThings API latency under load, beside the service's own floor (``/healthz``) in the same run.

Run with the local runtime up (``./cityos up``):  ``.venv/bin/python tests/bench/bench_sta.py``

It creates a database ``cityos_bench_sta`` on the platform's server with one public soil sensor reporting
every 10 seconds for a week (60,480 Observations of one Datastream) and 200 other public sensors, starts
its own API service on it (uvicorn, ``--workers`` processes, rate limits lifted) twice, without the
micro-cache (every request computes its page) and with it (``--cache-s``, the production default of 2 s), and
prints for a page of 100 Observations of that Datastream within the week (``$filter`` on ``phenomenonTime``,
``$orderby``, ``$top=100``) and for ``/healthz`` of the same run: one call's median, and p50/p95/p99 and
requests/s with ``--connections`` (50) clients (Debian's ``wrk``), and the page's requests/s as a ratio to
the floor's. The goal of the issue: p95 under 100 ms at 50 clients.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_api import WRK_SCRIPT, api_process, measure  # beside this file

from cityos.deploy.runtime.system import ensure_packages
from cityos.platform.settings import load_settings
from helpers import create_database

SENSOR, OTHERS = "bench-soil-0001", 200
PAGE, FLOOR = "Observations page (100 rows, one Datastream, a week)", "/healthz (no database: the HTTP floor)"
TARGET_P95_MS = 100.0
WEEK = 7 * 24 * 360  # one reading every 10 s


def load(url: str) -> datetime:
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=7)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy("copy core.devices (device_id, domain, kind, public, display_name) from stdin") as copy:
            copy.write_row((SENSOR, "env", "soil", True, "bench soil sensor"))
            for n in range(OTHERS):
                copy.write_row((f"bench-env-{n:04d}", "env", "thermometer", True, ""))
        with cur.copy("copy telemetry.measurements (time, device_id, metric, value) from stdin") as copy:
            for step in range(WEEK):
                copy.write_row((start + timedelta(seconds=10 * step), SENSOR, "soil_moisture", 20 + step % 100 / 10))
        with cur.copy("copy telemetry.latest_values (device_id, metric, time, value) from stdin") as copy:
            copy.write_row((SENSOR, "soil_moisture", now, 20.0))
            for n in range(OTHERS):
                copy.write_row((f"bench-env-{n:04d}", "temperature_c", now, 5.0))
        conn.commit()
        conn.execute("analyze")
    return start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--cache-s", type=float, default=2.0, help="CITYOS_API_CACHE_S of the second run")
    args = parser.parse_args()
    ensure_packages("wrk")
    settings = load_settings()
    url = create_database(settings, "cityos_bench_sta")
    started = time.perf_counter()
    start = load(url)
    print(f"loaded a week of 10-second readings ({WEEK:,} Observations) in {time.perf_counter() - started:.1f} s")
    home = tempfile.mkdtemp(prefix="bench-sta-")
    script = Path(home) / "report.lua"
    script.write_text(WRK_SCRIPT)
    begin, end = (start + timedelta(days=3)).isoformat().replace("+00:00", "Z"), \
        (start + timedelta(days=7)).isoformat().replace("+00:00", "Z")
    page = (f"/sta/v1.1/Datastreams('{SENSOR}:soil_moisture')/Observations?$top=100&$orderby=phenomenonTime%20asc"
            f"&$filter={quote(f'phenomenonTime ge {begin} and phenomenonTime lt {end}')}")
    paths = {PAGE: page, FLOOR: "/healthz"}
    for cache_s in (0.0, args.cache_s):
        with api_process(url, home, args.workers, cache_s) as base:
            print(f"\nAPI: {args.workers} uvicorn worker(s) on this machine, micro-cache {cache_s:g} s; "
                  f"wrk -t2 -c{args.connections} -d{args.seconds}s")
            body = httpx.get(base + page, timeout=60).json()
            assert len(body["value"]) == 100 and "@iot.nextLink" in body, body
            results = measure(base, paths, args.seconds, args.connections, script, width=56)
            got, floor = results[PAGE], results[FLOOR]["rps"]
            met = "yes" if got["p95"] < TARGET_P95_MS else "NO"
            print(f"  RATIO {PAGE}: {got['rps']:.1f} / {floor:.1f} req/s = {got['rps'] / floor:.3f} of the floor; "
                  f"p95 {got['p95']:.1f} ms (p95 < {TARGET_P95_MS:g} ms: {met})")


if __name__ == "__main__":
    main()
