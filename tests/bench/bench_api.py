"""Open-API latency under load, beside the service's own floor measured in the same run.

Run with the local runtime up (``./cityos up``):  ``.venv/bin/python tests/bench/bench_api.py``

It creates a database ``cityos_bench_api`` on the platform's server with 10,000 public sensors
(latest values) and one district sensor with a year of readings every 10 minutes, starts its own
API service on it (uvicorn, ``--workers`` processes, rate limits lifted) and prints:
- single calls: latest values of 10,000 sensors; one year of daily averages for the district sensor;
- wrk with 200 connections (Debian's ``wrk``, sending ``Accept-Encoding: gzip`` as browsers and HTTP
  libraries do): p50/p95 and requests/s for both queries, and for ``/healthz`` (no database: the
  floor of the HTTP stack on this machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cityos.deploy.runtime.system import ensure_packages
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


def single(client: httpx.Client, url: str, n: int = 20) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        size = len(response.content)
    return statistics.median(times), size


def wrk(url: str, seconds: int, connections: int, script: Path) -> str:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script),
                          "-H", "Accept-Encoding: gzip", url], capture_output=True, text=True, check=True).stdout
    return next(line for line in out.splitlines() if line.startswith("RESULT")).removeprefix("RESULT ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--cache-s", type=float, default=2.0, help="CITYOS_API_CACHE_S of the second run")
    args = parser.parse_args()
    ensure_packages("wrk")
    settings = load_settings()
    url = create_database(settings, "cityos_bench_api")
    started = time.perf_counter()
    load(url)
    print(f"loaded {SENSORS:,} sensors and a year of 10-minute readings in {time.perf_counter() - started:.1f} s")
    home = tempfile.mkdtemp(prefix="bench-api-")
    script = Path(home) / "report.lua"
    script.write_text(WRK_SCRIPT)
    year_end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    paths = {
        "latest values of 10,000 sensors": "/api/v1/sensors/latest?metric=temperature_c&limit=10000",
        "a year of daily averages (district sensor)": (
            f"/api/v1/sensors/{DISTRICT_SENSOR}/series?metric=temperature_c&interval=1d&agg=avg&limit=400"
            f"&start={(year_end - timedelta(days=365)).isoformat().replace('+00:00', 'Z')}"
            f"&end={year_end.isoformat().replace('+00:00', 'Z')}"),
        "/healthz (no database: the HTTP floor)": "/healthz",
    }
    for cache_s in (0.0, args.cache_s):
        port = free_port()
        env = {**os.environ, "CITYOS_DATABASE_URL": url, "CITYOS_MQTT_URL": "", "CITYOS_HOME": home,
               "CITYOS_ANONYMOUS_RATE_PER_MINUTE": "100000000", "CITYOS_ANONYMOUS_DAILY_QUOTA": "1000000000",
               "CITYOS_LOG_LEVEL": "WARNING", "CITYOS_API_CACHE_S": str(cache_s)}
        server = subprocess.Popen([sys.executable, "-m", "uvicorn", "cityos.platform.api.app:create_app",
                                   "--factory", "--host", "127.0.0.1", "--port", str(port), "--workers",
                                   str(args.workers), "--no-access-log", "--no-proxy-headers", "--log-level",
                                   "warning"], env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda b=base: _up(b), 30)
            print(f"\nAPI: {args.workers} uvicorn worker(s) on 2 cores, micro-cache {cache_s:g} s; "
                  f"wrk -t2 -c{args.connections} -d{args.seconds}s")
            with httpx.Client(timeout=60) as client:
                for label, path in paths.items():
                    median, size = single(client, base + path)
                    loaded = wrk(base + path, args.seconds, args.connections, script)
                    print(f"  {label:<44} one call: {median:7.1f} ms ({size / 1024:,.0f} KiB); "
                          f"under load: {loaded}")
        finally:
            server.terminate()
            server.wait(20)


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
