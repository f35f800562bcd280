"""The simulated device streams follow the payload contract and behave plausibly."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from cityos.ingest.simulate import health, hems, vehicles
from cityos.ingest.simulate.routes import grid_routes


def test_home_consumption_peaks_in_the_evening():
    rng = random.Random(1)
    home = hems.Home("h", base_w=300, peak_w=2000, solar_kw=0, battery_kwh=0)
    night = [hems.load_w(home, datetime(2026, 6, 1, 18, 0, tzinfo=UTC), rng) for _ in range(50)]  # 03:00 JST
    evening = [hems.load_w(home, datetime(2026, 6, 1, 10, 30, tzinfo=UTC), rng) for _ in range(50)]  # 19:30 JST
    assert sum(evening) > 3 * sum(night)


def test_solar_generates_only_in_daylight():
    rng = random.Random(1)
    home = hems.Home("h", base_w=300, peak_w=1000, solar_kw=4.5, battery_kwh=0)
    assert hems.solar_w(home, datetime(2026, 6, 1, 15, 0, tzinfo=UTC), rng) == 0  # midnight JST
    assert hems.solar_w(home, datetime(2026, 6, 1, 3, 0, tzinfo=UTC), rng) > 0  # noon JST


def test_cumulative_import_never_decreases():
    rng = random.Random(2)
    home = hems.Home.random("h", rng)
    t = datetime(2026, 1, 10, tzinfo=UTC)
    values = [hems.reading(home, t + timedelta(minutes=10 * i), rng)["import_kwh"] for i in range(200)]
    assert values == sorted(values)


def test_vehicle_stays_near_its_route_and_reports_contract_fields():
    rng = random.Random(3)
    car = vehicles.Vehicle("car-1", "patrol_car", grid_routes(), interval_s=5, cruise_kmh=40)
    t = datetime(2026, 1, 10, tzinfo=UTC)
    readings = [car.step(t + timedelta(seconds=5 * i), rng) for i in range(300)]
    assert all(37.4 < r["lat"] < 37.6 and 139.8 < r["lon"] < 140.1 for r in readings)
    assert all(0 <= r["speed_kmh"] < 120 and 0 <= r["heading_deg"] < 360 for r in readings)


def test_vehicles_brake_harshly_now_and_then():
    rng = random.Random(4)
    plow = vehicles.Vehicle("plow-1", "snowplow", grid_routes(), interval_s=2, cruise_kmh=25)
    t = datetime(2026, 1, 10, tzinfo=UTC)
    brakes = [r for r in (plow.step(t + timedelta(seconds=2 * i), rng) for i in range(1000))
              if r["accel_long"] <= vehicles.HARSH_BRAKE_MS2]
    assert 5 <= len(brakes) <= 80
    assert all("blade_down" in r for r in brakes)


def test_wearer_reports_sleep_stage_at_night_and_steps_by_day():
    rng = random.Random(5)
    w = health.Wearer("w", resting_bpm=65)
    night = health.reading(w, datetime(2026, 1, 10, 17, 0, tzinfo=UTC), 60, rng)  # 02:00 JST
    day = health.reading(w, datetime(2026, 1, 10, 3, 0, tzinfo=UTC), 60, rng)  # 12:00 JST
    assert night["sleep_stage"] in {"light", "deep", "rem", "awake"} and "steps" not in night
    assert "steps" in day and 20 <= day["heart_rate_bpm"] <= 250


def test_demo_homes_concentrate_in_pilot_districts_so_their_opted_in_homes_reach_k():
    """500 homes over 140 districts would give about 3 a district (every district blank below k = 10); the
    pilot districts hold 80 % of them, 25 each, so 85 % opted in is still about 21."""
    from collections import Counter

    from cityos.ingest.simulate.runner import SimulationConfig, home_addresses

    addresses = [(f"A{d:03d}-{a:03d}", f"07202-{d:03d}") for d in range(140) for a in range(800)]
    placed = home_addresses(addresses, 500, SimulationConfig())
    per_district = Counter(district for _, district in placed)
    assert len(placed) == 500 and len(set(placed)) == 500
    assert sorted(per_district.values(), reverse=True)[:16] == [25] * 16
    assert sum(per_district.values()) - 400 == 100  # the rest spread over the city


def test_vehicles_drive_only_along_the_roads_the_database_holds():
    from cityos.ingest.simulate.routes import road_routes

    roads = [((139.0, 37.0), (139.001, 37.0)), ((139.001, 37.0), (139.001, 37.001))]
    ends = {point for road in roads for point in road}
    route = road_routes(roads)(random.Random(3))
    assert set(route) <= ends and len(route) > 10


def test_ingest_and_platform_import_no_package_above_them():
    """Who may import whom (../shared/architecture.md): ingest and platform never import gis, opendata or apps."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = []
    for folder in ("ingest", "platform"):
        for path in (root / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                offenders += [f"{path.relative_to(root)}: {n}" for n in names
                              if n.split(".")[:2] in (["cityos", "gis"], ["cityos", "opendata"], ["cityos", "apps"])]
    assert offenders == []
