"""Every open dataset built from demo data has rows; health counts consenting wearers and sums steps per day.

The demo city (gis.democity) and the demo devices (the simulator's ``ensure_devices``) go into a database
of this module's own; readings made by the simulator's functions for the last 40 hours go through the
real ingest path (parse, validate, admit: ``process_message``; COPY: ``write_batch``). Each shipped
dataset is then built as ``cityos publish`` builds it, up to the upload.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import psycopg
import pytest

from cityos.ingest.admission import Admission
from cityos.ingest.pipeline import process_message
from cityos.ingest.simulate import health, hems, vehicles
from cityos.ingest.simulate.routes import Segment, road_routes, road_segments
from cityos.ingest.simulate.runner import SimulationConfig, device_plan, ensure_devices
from cityos.ingest.writer import Batch, write_batch
from cityos.opendata.build import build
from cityos.opendata.definitions import load_definitions, load_portal

# Times here pass ingest's window relative to now: tests/integration/test_time_windows.py re-runs
# these tests with the clock a year ahead.
pytestmark = pytest.mark.windowed

JST = ZoneInfo("Asia/Tokyo")
HOURS = 40
SLOW_S = 1800.0  # homes and wearables report every 30 minutes
VEHICLE_S = 10.0
VEHICLE_MINUTES = 20
CONFIG = SimulationConfig(homes=60, snowplows=3, patrol_cars=2, wearables=30, seed=7)
K = 10


def _readings(now: datetime, roads: list[Segment]) -> list[tuple[str, dict]]:
    """(topic, reading) of every simulated device, oldest first, made by the simulator's functions."""
    rng = random.Random(CONFIG.seed)
    route = road_routes(roads)
    out: list[tuple[str, dict]] = []
    slow_times = [now - timedelta(seconds=SLOW_S * n) for n in range(int(HOURS * 3600 / SLOW_S), 0, -1)]
    fast_times = [now - timedelta(seconds=VEHICLE_S * n) for n in range(int(VEHICLE_MINUTES * 60 / VEHICLE_S), 0, -1)]
    for device_id, domain, kind in device_plan(CONFIG):
        topic = f"cityos/v1/{domain}/{device_id}/readings"
        if domain == "hems":
            home = hems.Home.random(device_id, rng)
            out += [(topic, hems.reading(home, t, rng)) for t in slow_times]
        elif domain == "health":
            wearer = health.Wearer.random(device_id, rng)
            out += [(topic, health.reading(wearer, t, SLOW_S, rng)) for t in slow_times]
        else:
            vehicle = vehicles.Vehicle(device_id, kind, route, VEHICLE_S, 25 if kind == "snowplow" else 40)
            out += [(topic, vehicle.step(t, rng)) for t in fast_times]
    return out


@pytest.fixture(scope="module")
def demo(private_database_url):
    """The demo city, devices and 40 hours of readings ingested; returns (database URL, now, readings)."""
    from cityos.gis.democity import generate_city, load_city

    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(private_database_url) as conn:
        load_city(conn, generate_city(seed=5, residents=3000))
        conn.commit()
        conn.autocommit = True
        readings = _readings(now, road_segments(conn))  # the simulator's routes on the loaded roads
        ensure_devices(conn, CONFIG)
        admission = Admission()
        admission.refresh(conn, force=True)
        for start in range(0, len(readings), 2000):
            batch = Batch()
            for topic, reading in readings[start:start + 2000]:
                outcome = process_message(topic, json.dumps(reading).encode(), now=now, admission=admission,
                                          conn=conn)
                assert outcome.dead_letter is None, outcome.dead_letter
                for table, rows in outcome.rows.items():
                    batch.add_rows(table, rows)
            with conn.transaction():
                write_batch(conn, batch)
    return private_database_url, now, readings


@pytest.fixture(scope="module")
def built(demo, settings):
    """Every shipped dataset built from the demo data: name -> BuiltDataset."""
    url, now, _ = demo
    portal = load_portal()
    with psycopg.connect(url) as conn:
        return {d.name: build(conn, d, portal, k=K, public_base_url="http://127.0.0.1:8000", now=now)
                for d in load_definitions()}


def _frame(built_dataset) -> pd.DataFrame:
    from io import BytesIO

    data = next(r.data for r in built_dataset.resources if r.format == "csv")
    return pd.read_csv(BytesIO(data), encoding="utf-8-sig", dtype={"district_code": str})


@pytest.mark.parametrize("name", [d.name for d in load_definitions()])
def test_a_dataset_built_from_demo_data_has_rows_and_passes_the_gate(built, name):
    dataset = built[name]
    assert dataset.rows > 0, f"{name} is empty"
    assert dataset.violations == []


def _consenting_wearers(conn) -> dict[str, str]:
    """device_id -> subject of wearables whose owners consented to open data."""
    rows = conn.execute("""select d.device_id, d.owner_subject from core.devices d
                           join core.consents_current c on c.subject_id = d.owner_subject
                           where d.domain = 'health' and c.category = 'health' and c.purpose = 'open_data'""")
    return dict(rows.fetchall())


def test_health_city_row_counts_consenting_wearers_and_sums_steps_per_day(demo, built):
    url, _, readings = demo
    with psycopg.connect(url) as conn:
        wearers = _consenting_wearers(conn)
    assert len(wearers) >= K
    steps: dict[tuple[str, str], float] = defaultdict(float)  # (device, JST day) -> steps that day
    for topic, reading in readings:
        device = topic.split("/")[3]
        if device in wearers and "steps" in reading:
            steps[(device, datetime.fromisoformat(reading["t"]).astimezone(JST).date().isoformat())] += reading["steps"]
    per_month: dict[str, list[float]] = defaultdict(list)
    for (_, day), total in steps.items():
        per_month[day[:7]].append(total)
    city = _frame(built["health-by-district-month"]).query("district_code == 'all'").set_index("month")
    for month, totals in per_month.items():
        assert city.loc[month, "wearers"] >= K
        assert city.loc[month, "steps_per_day"] == pytest.approx(sum(totals) / len(totals), abs=1)
        assert 20 <= city.loc[month, "heart_rate_mean"] <= 250
