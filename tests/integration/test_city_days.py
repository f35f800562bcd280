"""Days are the city's days: every daily bucket runs from local midnight (CITYOS_TIMEZONE, default Asia/Tokyo),
and the demo's energy dataset has a complete first day (the simulator sends the previous local day first,
through the broker and ingest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from servers import Workers

from cityos.platform.settings import Settings, load_settings
from helpers import api_server, wait_for

TOKYO = ZoneInfo("Asia/Tokyo")
SENSOR = "env-days-01"


def _local_midnight(days_ago: int, zone: ZoneInfo = TOKYO) -> datetime:
    today = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today - timedelta(days=days_ago)).astimezone(UTC)


@pytest.fixture(scope="module")
def sensor(database_url):
    """A public sensor with one reading 30 minutes before and one 30 minutes after a Tokyo midnight."""
    midnight = _local_midnight(2)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from core.devices where device_id = %s", (SENSOR,))
        conn.execute("delete from telemetry.measurements where device_id = %s", (SENSOR,))
        conn.execute("insert into core.devices (device_id, domain, kind, public) values (%s, 'env', 'air', true)",
                     (SENSOR,))
        for t, value in ((midnight - timedelta(minutes=30), 1.0), (midnight + timedelta(minutes=30), 5.0)):
            conn.execute("insert into telemetry.measurements (time, device_id, metric, value) values "
                         "(%s, %s, 'pm25', %s)", (t, SENSOR, value))
    return midnight


def _daily(base: str, midnight: datetime) -> dict:
    return httpx.get(f"{base}/api/v1/sensors/{SENSOR}/series", params={
        "metric": "pm25", "interval": "1d", "agg": "sum", "start": (midnight - timedelta(days=1)).isoformat(),
        "end": (midnight + timedelta(days=1)).isoformat()}, timeout=30).json()


def _env(database_url: str, tmp_path, **extra: str) -> dict[str, str]:
    return {"CITYOS_DATABASE_URL": database_url, "CITYOS_HOME": str(tmp_path), **extra}


def test_a_daily_series_splits_at_local_midnight(database_url, sensor, tmp_path):
    with api_server(_env(database_url, tmp_path)) as base:
        answer = _daily(base, sensor)
    assert answer["timezone"] == "Asia/Tokyo"
    assert [(datetime.fromisoformat(i["time"]), i["value"]) for i in answer["items"]] == [
        (sensor - timedelta(days=1), 1.0), (sensor, 5.0)]  # each reading in its own Tokyo day


def test_the_city_time_zone_setting_moves_the_daily_buckets(database_url, sensor, tmp_path):
    with api_server(_env(database_url, tmp_path, CITYOS_TIMEZONE="UTC")) as base:
        answer = _daily(base, sensor)
    assert answer["timezone"] == "UTC"
    utc_midnight = sensor.replace(hour=0)
    assert [(datetime.fromisoformat(i["time"]), i["value"]) for i in answer["items"]] == [(utc_midnight, 6.0)]


def test_an_unknown_time_zone_is_refused_at_start():
    with pytest.raises(ValueError, match="unknown time zone"):
        Settings(timezone="Asia/Aizu")


def _plant_day(conn, day_start: datetime) -> None:
    """Ten opted-in homes, each with meter readings ten minutes after and before a local day's midnights."""
    for i in range(10):
        device, subject = f"days-home-{i:02d}", f"days-subject-{i:02d}"
        conn.execute("insert into core.devices (device_id, domain, owner_subject, district_code) values "
                     "(%s, 'hems', %s, 'DAYS-01') on conflict do nothing", (device, subject))
        conn.execute("insert into core.consent_events (subject_id, category, purpose, action, actor) values "
                     "(%s, 'energy', 'open_data', 'grant', 'test')", (subject,))
        for t, kwh in ((day_start + timedelta(minutes=10), 100.0), (day_start + timedelta(hours=23, minutes=50),
                                                                   112.5)):
            conn.execute("insert into telemetry.energy_readings (time, device_id, metric, value) values "
                         "(%s, %s, 'import_kwh', %s) on conflict do nothing", (t, device, kwh))


def _energy_rows(database_url: str, timezone: str) -> list[list[str]]:
    from cityos.opendata.definitions import load_definitions
    from cityos.opendata.run import build_all

    settings = load_settings(database_url=database_url, timezone=timezone)
    with psycopg.connect(database_url, autocommit=True) as conn:
        built = build_all(conn, load_definitions(only=["energy-by-district-day"]), settings)[0]
    lines = built.resources[0].data.decode("utf-8-sig").splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]


def test_the_energy_dataset_counts_a_local_day_from_local_midnight(database_url):
    day_start = _local_midnight(3)
    with psycopg.connect(database_url, autocommit=True) as conn:
        _plant_day(conn, day_start)
    day = day_start.astimezone(TOKYO).date().isoformat()
    tokyo = [r for r in _energy_rows(database_url, "Asia/Tokyo") if r["district_code"] == "DAYS-01"]
    assert [(r["day"], r["homes"], r["kwh_per_home"]) for r in tokyo] == [(day, "10", "12.5")]
    # In UTC days the two readings fall in two days, neither with a day's worth of meter readings.
    assert [r for r in _energy_rows(database_url, "UTC") if r["district_code"] == "DAYS-01"] == []


def test_the_demo_publishes_a_complete_first_day(private_database_url, test_broker, tmp_path):
    """The simulator's homes send the previous local day through the broker and ingest before anything else,
    so the energy dataset built right after `cityos up` has that day, with k homes in a pilot district."""
    from cityos.deploy.demo import previous_day_homes
    from cityos.ingest.simulate.runner import SimulationConfig, simulate

    database_url = private_database_url
    with psycopg.connect(database_url, autocommit=True) as conn:
        for i in range(20):
            conn.execute("insert into gis.addresses (address_id, district_code, geom) values "
                         "(%s, 'PILOT-01', st_setsrid(st_point(139.93, 37.49), 4326))", (f"DAYS-A{i:02d}",))
    ingest = Workers(database_url, test_broker.url, tmp_path / "ingest", public_feed=False)
    ingest.start()
    try:
        config = SimulationConfig(homes=20, snowplows=0, patrol_cars=0, wearables=0, pilot_districts=1,
                                  pilot_share=1.0, hems_interval_s=3600)
        simulate(database_url, test_broker.url, test_broker.broker.target(), config, duration_s=0.5)
        wait_for(lambda: previous_day_homes(database_url, "Asia/Tokyo") == 20, 60)
    finally:
        ingest.stop()
    yesterday = (datetime.now(TOKYO) - timedelta(days=1)).date().isoformat()
    rows = [r for r in _energy_rows(database_url, "Asia/Tokyo") if r["day"] == yesterday]
    assert len(rows) == 1 and rows[0]["district_code"] == "PILOT-01"
    assert int(rows[0]["homes"]) >= 10 and float(rows[0]["kwh_per_home"]) > 0
