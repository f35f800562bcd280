"""Open-API latency under load, beside the service's own floor measured in the same run.

Run with the local runtime up (``./cityos up``):  ``.venv/bin/python tests/bench/bench_api.py``

It creates a database ``cityos_bench_api`` on the platform's server with 10,000 public sensors
(latest values) and one district sensor with a year of readings every 10 minutes, starts its own
API service on it (uvicorn, ``--workers`` processes, rate limits lifted) and prints:
- single calls: latest values of 10,000 sensors; one year of daily averages for the district sensor, up to the
  last midnight (UTC) and up to now (no ``end``: the current hour is read from raw rows on every request);
- wrk with 200 connections (Debian's ``wrk``, sending ``Accept-Encoding: gzip`` as browsers and HTTP
  libraries do): p50/p95 and requests/s for both queries, and for ``/healthz`` (no database: the
  floor of the HTTP stack on this machine);
- each query's requests/s as a ratio to that floor in the same run, beside the targets (cache off: a year
  of daily averages at least 0.25 of the floor with p95 under 250 ms, latest of 10,000 sensors at least
  0.05; cache on: both p95 under 100 ms).

The year of readings is loaded straight into the raw table, so the bench runs one roll-up pass before it
starts the API (in production the API's maintenance loop keeps the roll-ups current).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cityos.deploy.runtime.system import ensure_packages
from cityos.platform.db.series_rollups import refresh_series_rollups
from cityos.platform.settings import load_settings
from helpers import create_database, free_port, wait_for

SENSORS = 10_000
DISTRICT_SENSOR = "env-district-07202-001"
WRK_SCRIPT = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT p50=%.2f p95=%.2f p99=%.2f rps=%.1f errors=%d\\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.requests / (summary.duration / 1e6),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status
      + summary.errors.timeout))
end
"""


def load(url: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy("copy core.devices (device_id, domain, kind, public, district_code) from stdin") as copy:
            for n in range(SENSORS):
                copy.write_row((f"env-{n:05d}", "env", "thermometer", True, f"07202-{n % 60:03d}"))
            copy.write_row((DISTRICT_SENSOR, "env", "district_average", True, "07202-001"))
        with cur.copy("copy telemetry.latest_values (device_id, metric, time, value) from stdin") as copy:
            for n in range(SENSORS):
                copy.write_row((f"env-{n:05d}", "temperature_c", now - timedelta(seconds=n % 600), -2.0 + n % 70 / 10))
        start = now - timedelta(days=365)
        with cur.copy("copy telemetry.measurements (time, device_id, metric, value) from stdin") as copy:
            for step in range(365 * 24 * 6):
                copy.write_row((start + timedelta(minutes=10 * step), DISTRICT_SENSOR, "temperature_c",
                                10 + 15 * ((step // 144) % 365 - 182) / 182))
        conn.commit()
        conn.execute("analyze")
    with psycopg.connect(url, autocommit=True) as conn:
        refresh_series_rollups(conn, load_settings().timezone)
        conn.execute("analyze")


def single(client: httpx.Client, url: str, n: int = 20) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        size = len(response.content)
    return statistics.median(times), size


def wrk(url: str, seconds: int, connections: int, script: Path) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script),
                          "-H", "Accept-Encoding: gzip", url], capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT")).removeprefix("RESULT ")
    return {k: float(v) for k, v in (part.split("=") for part in line.split())}


LATEST, YEAR, FLOOR = "latest values of 10,000 sensors", "a year of daily averages (district sensor)", \
    "/healthz (no database: the HTTP floor)"
#: The same year up to this moment: its last day reads the current hour's raw rows on every request (no target).
YEAR_NOW = "a year of daily averages up to now"
#: (query, cache on?) -> (least requests/s as a share of the floor's, most p95 in ms) of issue 18.
TARGETS = {(YEAR, False): (0.25, 250.0), (LATEST, False): (0.05, None), (YEAR, True): (None, 100.0),
           (LATEST, True): (None, 100.0), (YEAR_NOW, False): (None, None), (YEAR_NOW, True): (None, None)}


def ratios(results: dict[str, dict[str, float]], cached: bool) -> list[str]:
    """One line per query: its requests/s as a ratio to the floor of the same run, and the targets."""
    floor = results[FLOOR]["rps"]
    lines = []
    for label in (YEAR, LATEST, YEAR_NOW):
        got = results[label]
        ratio = got["rps"] / floor if floor else 0.0
        least, p95 = TARGETS[(label, cached)]
        checks = []
        if least is not None:
            checks.append(f"ratio >= {least:g}: {'yes' if ratio >= least else 'NO'}")
        if p95 is not None:
            checks.append(f"p95 < {p95:g} ms: {'yes' if got['p95'] < p95 else 'NO'}")
        lines.append(f"  RATIO {label:<44} {got['rps']:8.1f} / {floor:8.1f} req/s = {ratio:5.3f}; "
                     f"p95 {got['p95']:7.1f} ms ({'; '.join(checks) or 'no target'})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--cache-s", type=float, default=2.0, help="CITYOS_API_CACHE_S of the second run")
    parser.add_argument("--database", default="cityos_bench_api", help="name of the bench's own database")
    args = parser.parse_args()
    ensure_packages("wrk")
    settings = load_settings()
    url = create_database(settings, args.database)
    started = time.perf_counter()
    load(url)
    print(f"loaded {SENSORS:,} sensors and a year of 10-minute readings in {time.perf_counter() - started:.1f} s")
    home = tempfile.mkdtemp(prefix="bench-api-")
    script = Path(home) / "report.lua"
    script.write_text(WRK_SCRIPT)
    year_end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    paths = {
        LATEST: "/api/v1/sensors/latest?metric=temperature_c&limit=10000",
        YEAR: (
            f"/api/v1/sensors/{DISTRICT_SENSOR}/series?metric=temperature_c&interval=1d&agg=avg&limit=400"
            f"&start={(year_end - timedelta(days=365)).isoformat().replace('+00:00', 'Z')}"
            f"&end={year_end.isoformat().replace('+00:00', 'Z')}"),
        YEAR_NOW: (f"/api/v1/sensors/{DISTRICT_SENSOR}/series?metric=temperature_c&interval=1d&agg=avg&limit=400"
                   f"&start={(year_end - timedelta(days=365)).isoformat().replace('+00:00', 'Z')}"),
        FLOOR: "/healthz",
    }
    for cache_s in (0.0, args.cache_s):
        with api_process(url, home, args.workers, cache_s, CITYOS_SERIES_ROLLUPS="true") as base:
            print(f"\nAPI: {args.workers} uvicorn worker(s) on 2 cores, micro-cache {cache_s:g} s; "
                  f"wrk -t2 -c{args.connections} -d{args.seconds}s")
            results = measure(base, paths, args.seconds, args.connections, script, width=44)
            print("\n".join(ratios(results, cached=cache_s > 0)))


@contextlib.contextmanager
def api_process(url: str, home: str, workers: int, cache_s: float, **env: str) -> Iterator[str]:
    """An API service of its own on database ``url`` (uvicorn, ``workers`` processes, rate limits lifted, the
    micro-cache at ``cache_s``): its base URL while the block runs."""
    port = free_port()
    env = {**os.environ, "CITYOS_DATABASE_URL": url, "CITYOS_MQTT_URL": "", "CITYOS_HOME": home,
           "CITYOS_ANONYMOUS_RATE_PER_MINUTE": "100000000", "CITYOS_ANONYMOUS_DAILY_QUOTA": "1000000000",
           "CITYOS_LOG_LEVEL": "WARNING", "CITYOS_API_CACHE_S": str(cache_s), **env}
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "cityos.platform.api.app:create_app", "--factory",
                               "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
                               "--no-access-log", "--no-proxy-headers", "--log-level", "warning"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(base), 30)
        yield base
    finally:
        server.terminate()
        server.wait(20)


def measure(base: str, paths: dict[str, str], seconds: int, connections: int, script: Path, width: int
            ) -> dict[str, dict[str, float]]:
    """Each path's one-call median, then wrk's figures with ``connections`` clients (printed; returned by label)."""
    results = {}
    with httpx.Client(timeout=60) as client:
        for label, path in paths.items():
            median, size = single(client, base + path)
            loaded = results[label] = wrk(base + path, seconds, connections, script)
            print(f"  {label:<{width}} one call: {median:7.1f} ms ({size / 1024:,.1f} KiB); under load: "
                  f"p50={loaded['p50']:.1f} p95={loaded['p95']:.1f} p99={loaded['p99']:.1f} ms "
                  f"rps={loaded['rps']:.1f} errors={loaded['errors']:g}")
    return results


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
