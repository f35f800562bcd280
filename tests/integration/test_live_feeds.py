"""Live feeds over WebSocket (and SSE for the energy aggregate): public streams only, aggregates suppressed below k."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import psycopg
import pytest
from publisher import Publisher
from websockets.sync.client import connect

from cityos.platform import consent

PLOW = "plow-live-01"


@pytest.fixture(scope="module")
def api(api):  # the shared API (tests/conftest.py): its WebSocket and HTTP base URLs
    return api.replace("http://", "ws://"), api


@pytest.fixture(scope="module")
def homes(database_url):
    """12 opted-in homes in district L1, 3 in L2 (too few to publish), 1 home without consent in L1."""
    now = datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        plan = [("L1", n, True) for n in range(12)] + [("L2", n, True) for n in range(12, 15)] + [("L1", 15, False)]
        for district, n, agreed in plan:
            device, subject = f"live-home-{n:02d}", f"live-subject-{n:02d}"
            conn.execute("insert into core.devices (device_id, domain, owner_subject, district_code) values "
                         "(%s, 'hems', %s, %s) on conflict do nothing", (device, subject, district))
            conn.execute("insert into telemetry.latest_values (device_id, metric, time, value) values "
                         "(%s, 'power_w', %s, %s) on conflict (device_id, metric) do update set value = excluded.value,"
                         " time = excluded.time", (device, now, 1000.0 if agreed else 99_999.0))
            if agreed:
                consent.grant(conn, subject, "energy", "open_data", "test")


@pytest.mark.windowed  # the reading's time passes ingest's window relative to now
def test_snowplow_positions_arrive_over_a_websocket(api, register, test_broker, workers):
    password = register(PLOW, "vehicle", kind="snowplow", public=True)
    ws_base, _ = api
    with connect(f"{ws_base}/api/v1/live/snowplows/ws", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["event"] == "snapshot"
        with Publisher(test_broker.device_url(PLOW, password)) as publisher:
            reading = {"t": datetime.now(UTC).isoformat(), "lat": 37.49, "lon": 139.93, "speed_kmh": 20,
                       "blade_down": True}
            publisher.publish(f"cityos/v1/vehicle/{PLOW}/readings", json.dumps(reading))
            message = json.loads(ws.recv(timeout=10))
    assert message["event"] == "position"
    assert message["data"]["device_id"] == PLOW and message["data"]["blade_down"] is True


def test_energy_aggregate_over_a_websocket_counts_only_opted_in_homes_and_blanks_small_districts(api, homes):
    ws_base, _ = api
    with connect(f"{ws_base}/api/v1/live/energy/ws?interval_s=1", open_timeout=10) as ws:
        message = json.loads(ws.recv(timeout=10))
    assert message["event"] == "energy"
    districts = {d["district_code"]: d for d in message["data"]["districts"]}
    assert districts["L1"] == {"district_code": "L1", "homes": 12, "avg_power_w": 1000.0}
    assert districts["L2"] == {"district_code": "L2", "homes": None, "avg_power_w": None}
    assert message["data"]["city"] == {"homes": 15, "avg_power_w": 1000.0}


def test_energy_aggregate_is_also_an_event_stream(api, homes):
    _, http_base = api
    with httpx.stream("GET", f"{http_base}/api/v1/live/energy?interval_s=1", timeout=10) as response:
        lines = []
        for line in response.iter_lines():
            lines.append(line)
            if line.startswith("data:"):
                break
    assert lines[0] == "event: energy"
    assert json.loads(lines[1][5:])["city"]["homes"] == 15
