"""Parse throughput of the pure ingest core (no broker, no database): prints readings/s.

Run: ``python tests/bench/bench_parse.py [seconds-per-case] [--stdlib-json]``. The target is
250,000 readings/s over two worker processes (so well under 4 us per reading in 1000-reading
batches) and 25,000 single-reading messages/s.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta, timezone

from cityos.ingest import normalise
from cityos.ingest.normalise import parse_message

NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
JST = timezone(timedelta(hours=9))
START = NOW - timedelta(hours=1)


def _iso(i: int) -> str:
    return (START + timedelta(milliseconds=250 * i)).astimezone(JST).isoformat(timespec="milliseconds")


def _hems(i: int) -> dict:
    return {"t": _iso(i), "power_w": 1200.5 + i % 700, "import_kwh": 12345.678 + i / 1000}


def _vehicle(i: int) -> dict:
    return {"t": _iso(i), "lat": 37.4945 + i * 1e-6, "lon": 139.9298 - i * 1e-6, "speed_kmh": 31.5,
            "heading_deg": 271.0, "gps_error_m": 4.5, "role": "snowplow", "blade_down": i % 2 == 0}


def _senml(n: int) -> list:
    pack = [{"n": "power_w", "v": 1200.5 + i % 700, "t": i * 0.25} for i in range(n)]
    pack[0].update({"bn": "urn:dev:mac:0024befffe804ff1:", "bt": START.timestamp(), "bu": "W"})
    return pack


def _d4c(i: int) -> dict:
    local = (START + timedelta(seconds=i)).astimezone(JST)
    return {"car_name": "公用車1", "measurement_date": local.strftime("%Y/%m/%d"),
            "measurement_hour": local.strftime("%H:%M:%S"), "gps_error_meter": "5",
            "latitude": str(37.4945 + i * 1e-6), "longitude": str(139.9298 - i * 1e-6),
            "accel_x_transverse": "0.012", "accel_y_longitudinal": "-0.034"}


CASES = {
    "hems single (2 metrics)": ("cityos/v1/hems/home-0001/readings", lambda: [_hems(0)], 1),
    "hems batch 1000 (2 metrics)": ("cityos/v1/hems/home-0001/readings",
                                    lambda: {"batch": [_hems(i) for i in range(1000)]}, 1000),
    "vehicle single (7 fields)": ("cityos/v1/vehicle/plow-0001/readings", lambda: [_vehicle(0)], 1),
    "vehicle batch 1000 (7 fields)": ("cityos/v1/vehicle/plow-0001/readings",
                                      lambda: {"batch": [_vehicle(i) for i in range(1000)]}, 1000),
    "senml 1000 records": ("cityos/v1/hems/home-0001/senml", lambda: _senml(1000), 1000),
    "d4c 1000 records (strings)": ("cityos/v1/vehicle/car-0001/d4c",
                                   lambda: [_d4c(i) for i in range(1000)], 1000),
}


def run(seconds: float = 1.0) -> None:
    """Time each case for about ``seconds`` and print readings/s and us per reading."""
    for name, (topic, make, readings) in CASES.items():
        document = make()
        if isinstance(document, list) and readings == 1 and "senml" not in topic:
            document = document[0]
        payload = json.dumps(document, ensure_ascii=False).encode()
        parse_message(topic, payload, now=NOW)  # warm up (and check it is valid)
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for _ in range(10):
                parse_message(topic, payload, now=NOW, client_username="cityos-service")
            count += 10
        rate = count * readings / elapsed
        print(f"{name:32s} {rate:12,.0f} readings/s  {1e6 / rate:6.2f} us/reading  "
              f"{count / elapsed:10,.0f} msgs/s  ({len(payload):,} bytes)")


if __name__ == "__main__":
    if "--stdlib-json" in sys.argv:  # as on an edge gateway without orjson
        sys.argv.remove("--stdlib-json")
        normalise.orjson = None
    run(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
