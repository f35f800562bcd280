"""Delivery under load, repeated: the tally of the gateway's fault scenarios and the bare publishers' window.

Run with a local runtime up:  ``.venv/bin/python tests/bench/bench_delivery_under_load.py --runs 20``

Each run is one pytest process running, while ``stress-ng --cpu 2`` (tests/load.py) keeps both cores busy
for the whole loop:
- the three gateway scenarios of tests/integration/test_delivery_under_load.py (broker restart, 30 s
  database outage, kill -9 of the ingest workers), each asserting that every reading the gateway took
  into its outbox is stored exactly once and the outbox drains by confirmation;
- the bare paho publishers across a broker restart
  (tests/integration/test_ingest_reliability.py), whose window is measured and printed, not asserted.

It prints one line per run and the tally ("passed / runs" per scenario) and the bare publishers' windows.
The database-outage scenario stops the PostgreSQL of ``CITYOS_HOME`` for 30 s each run: point
``CITYOS_HOME`` (and the CITYOS_*_PORT settings) at a stack of your own, not at one others are using.
A benchmark, not a timed test: the figures are what it is for.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from load import EXTERNAL, cpu_load

from cityos.platform.settings import load_settings, redact_url
from helpers import create_database

REPO = Path(__file__).resolve().parents[2]

GATEWAY = "tests/integration/test_delivery_under_load.py"
SCENARIOS = {
    "broker restart": f"{GATEWAY}::test_gateway_readings_survive_a_broker_restart_under_load",
    "database outage (30 s)": f"{GATEWAY}::test_gateway_readings_survive_a_30_s_database_outage_under_load",
    "kill -9 of the workers": f"{GATEWAY}::test_gateway_readings_survive_a_kill_9_of_the_workers_mid_batch_under_load",
}
BARE = ("tests/integration/test_ingest_reliability.py::"
        "test_the_window_of_bare_paho_publishers_across_a_broker_restart_is_measured")
BARE_PROTOCOLS = ("MQTT 5", "MQTT 3.1.1")


def run_once(index: int, out: Path, env: dict[str, str], bare: bool) -> dict[str, dict]:
    """One pytest process over every scenario; per test: outcome, seconds, recorded properties."""
    report = out / f"run-{index:02d}.xml"
    nodes = [*SCENARIOS.values(), *([BARE] if bare else [])]
    with (out / f"run-{index:02d}.log").open("w") as log:
        subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s",
                        f"--junitxml={report}", *nodes], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                       check=False)
    results: dict[str, dict] = {}
    if not report.exists():
        return results
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        results[case.get("name", "")] = {"outcome": outcome, "seconds": float(case.get("time", 0)), "props": props}
    return results


def _props(value: str | None) -> dict:
    """A property as recorded (the repr of a dict or a number)."""
    if value is None:
        return {}
    try:
        return json.loads(value.replace("'", '"'))
    except ValueError:
        return {"value": value}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-bare", action="store_true", help="skip the bare paho publishers' measurement")
    parser.add_argument("--out", type=Path, default=None, help="folder for each run's log and report")
    args = parser.parse_args()

    settings = load_settings()
    out = args.out or Path(settings.home) / "test-runs" / f"delivery-{time.strftime('%Y%m%dT%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    database = create_database(settings, "cityos_bench_delivery")
    print(f"database {redact_url(database)}; the outage scenario stops the PostgreSQL of {settings.home}")
    print(f"{os.cpu_count()} cores, all kept busy by another process (stress-ng) for the whole loop; logs in {out}")
    env = {**os.environ, "CITYOS_TEST_DATABASE_URL": database, EXTERNAL: "1"}
    names = {node.rsplit("::", 1)[1]: label for label, node in SCENARIOS.items()}
    tally = {label: 0 for label in SCENARIOS}
    windows: dict[str, list[dict]] = {p: [] for p in BARE_PROTOCOLS}
    done = 0
    started = time.monotonic()
    with cpu_load():
        for index in range(1, args.runs + 1):
            results = run_once(index, out, env, bare=not args.no_bare)
            done += 1
            line = []
            for test, label in names.items():
                result = results.get(test, {"outcome": "not run", "seconds": 0, "props": {}})
                tally[label] += result["outcome"] == "passed"
                resent = result["props"].get("resent_unconfirmed", "?")
                line.append(f"{label}: {result['outcome']} ({result['seconds']:.0f} s, {resent} resent)")
            bare = results.get(BARE.rsplit("::", 1)[1])
            if bare and bare["outcome"] == "passed":
                for protocol in BARE_PROTOCOLS:
                    measured = _props(bare["props"].get(protocol))
                    windows[protocol].append(measured)
                    line.append(f"bare {protocol}: {measured.get('lost', '?')} lost, "
                                f"{measured.get('refused', '?')} refused, window {measured.get('window_s', '?')} s")
            print(f"run {index:2d}/{args.runs} ({time.monotonic() - started:.0f} s): " + "; ".join(line), flush=True)

    print(f"\ntally after {done} runs (both cores busy, stress-ng --cpu {os.cpu_count()}):")
    for label, passed in tally.items():
        print(f"  gateway, {label}: {passed}/{done} passed")
    for protocol, measured in windows.items():
        if not measured:
            continue
        spans = [m.get("window_s", 0) for m in measured]
        print(f"  bare paho {protocol}: acknowledged but not stored in {sum(1 for m in measured if m.get('lost'))}"
              f"/{len(measured)} runs; window min {min(spans):.2f} s, median {statistics.median(spans):.2f} s, "
              f"max {max(spans):.2f} s; refused (not authorized) median "
              f"{statistics.median(m.get('refused', 0) for m in measured):.0f}")
    return 0 if all(passed == done for passed in tally.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
