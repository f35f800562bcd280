"""Long-range series come from the hourly and daily roll-ups for complete buckets and from raw rows for the
rest (the current bucket, partial buckets at the range's edges), so they are as exact and fresh as raw."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from cityos.platform.db.series_rollups import refresh_series_rollups
from helpers import wait_for

ZONE = "Asia/Tokyo"
SENSOR, GONE = "env-roll-01", "env-roll-02"
AGGS = {"avg": "avg", "min": "min", "max": "max", "sum": "sum", "count": "count"}
#: The API reads the roll-ups (the suite's default is raw rows); maintenance stays out of the way.
API_ENV = {"CITYOS_SERIES_ROLLUPS": "true", "CITYOS_TIMEZONE": ZONE, "CITYOS_MAINTENANCE_INTERVAL_S": "3600"}
API_BROKER = False


@pytest.fixture(scope="module")
def rolled_up(database_url) -> None:
    """Two public sensors with a reading every 10 minutes for the last four days, rolled up."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for device in (SENSOR, GONE):
            conn.execute("delete from core.devices where device_id = %s", (device,))
            conn.execute("delete from telemetry.measurements where device_id = %s", (device,))
            conn.execute("insert into core.devices (device_id, domain, kind, public) values (%s, 'env', 'air', true)",
                         (device,))
            conn.execute("""insert into telemetry.measurements (time, device_id, metric, value)
                            select %s - make_interval(mins => 10 * n), %s, 'pm25', (n * 7919) %% 101
                            from generate_series(1, 4 * 144) n""", (now, device))
        # Written into the past with SQL, behind ingest: roll everything up again, as from an empty roll-up.
        conn.execute("delete from cityos_meta.rollup_watermarks")
        refresh_series_rollups(conn, ZONE)


@pytest.fixture(scope="module")
def api(rolled_up, api):  # the shared API (tests/conftest.py), started once the readings are rolled up
    return api


def _series(base: str, device: str, interval: str, agg: str, start: datetime, end: datetime) -> list:
    answer = httpx.get(f"{base}/api/v1/sensors/{device}/series", params={
        "metric": "pm25", "interval": interval, "agg": agg, "start": start.isoformat(), "end": end.isoformat(),
        "limit": 1000}, timeout=30)
    answer.raise_for_status()
    return [(datetime.fromisoformat(i["time"]), i["value"]) for i in answer.json()["items"]]


def _raw(database_url: str, device: str, interval: str, agg: str, start: datetime, end: datetime) -> list:
    width = {"1h": "1 hour", "1d": "1 day"}[interval]
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            f"select time_bucket('{width}', time, %s), {AGGS[agg]}(value) from telemetry.measurements "
            "where device_id = %s and metric = 'pm25' and time >= %s and time < %s group by 1 order by 1",
            (ZONE, device, start, end)).fetchall()


def test_rolled_up_series_equal_the_answer_from_raw_rows(api, database_url):
    now = datetime.now(UTC)
    start, end = now - timedelta(days=3, minutes=17), now + timedelta(minutes=5)  # partial buckets at both edges
    for interval in ("1h", "1d"):
        for agg in AGGS:
            got = _series(api, SENSOR, interval, agg, start, end)
            want = _raw(database_url, SENSOR, interval, agg, start, end)
            assert [t for t, _ in got] == [t for t, _ in want], (interval, agg)
            assert [v for _, v in got] == pytest.approx([v for _, v in want]), (interval, agg)


def test_a_new_reading_shows_at_once_in_the_current_bucket(api, database_url):
    now = datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("insert into telemetry.measurements (time, device_id, metric, value) values (%s, %s, 'pm25', "
                     "999) on conflict do nothing", (now - timedelta(seconds=1), SENSOR))
    for interval in ("1h", "1d"):
        assert _series(api, SENSOR, interval, "max", now - timedelta(days=2), now + timedelta(minutes=1))[-1][1] == 999


def test_complete_days_are_read_from_the_daily_rollup(api, database_url):
    now = datetime.now(UTC)
    start, end = now - timedelta(days=3), now
    before = _series(api, GONE, "1d", "avg", start, end)
    with psycopg.connect(database_url, autocommit=True) as conn:  # raw rows of the rolled-up days go away
        done = conn.execute("select done_until from cityos_meta.rollup_watermarks where rollup = "
                            "'measurements_daily' and zone = %s", (ZONE,)).fetchone()[0]
        conn.execute("delete from telemetry.measurements where device_id = %s and time < %s", (GONE, done))
    after = _series(api, GONE, "1d", "avg", start, end)
    complete = [b for b in before if b[0] + timedelta(days=1) <= done and b[0] >= start]
    assert complete and all(b in after for b in complete)


def test_a_rewritten_rollup_is_read_again_not_kept(api, database_url):
    now = datetime.now(UTC)
    start, end = now - timedelta(days=3), now
    assert 500 not in [v for _, v in _series(api, SENSOR, "1d", "max", start, end)]  # now kept by the API
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update telemetry.measurements set value = 500 where device_id = %s and time < %s and time > %s",
                     (SENSOR, now - timedelta(days=2), now - timedelta(days=2, hours=1)))
        conn.execute("delete from cityos_meta.rollup_watermarks")  # roll everything up again
        refresh_series_rollups(conn, ZONE)
    assert 500 in [v for _, v in _series(api, SENSOR, "1d", "max", start, end)]


def test_a_late_reading_days_old_is_in_the_rollups_after_the_next_maintenance_pass(api, database_url):
    """A gateway back after days offline: the writer marks the touched hour, maintenance rolls it up again
    (the refresh's own look-back is two hours), and the series from the roll-ups equals the raw answer."""
    from cityos.ingest.writer import Batch, write_batch
    from cityos.platform.db.maintenance import run_maintenance

    late = (datetime.now(UTC) - timedelta(days=2, hours=5)).replace(minute=3, second=17, microsecond=0)  # no twin
    batch = Batch(received_at=datetime.now(UTC))
    batch.add_rows("telemetry.measurements", [(late, SENSOR, "pm25", 5000.0)])
    with psycopg.connect(database_url, autocommit=True) as conn:
        write_batch(conn, batch)
    run_maintenance(database_url, 400, timezone=ZONE)
    start, end = late - timedelta(days=1), late + timedelta(days=1)
    for interval in ("1h", "1d"):
        got = _series(api, SENSOR, interval, "max", start, end)
        assert 5000.0 in [v for _, v in got], interval
        assert [v for _, v in got] == pytest.approx([v for _, v in _raw(database_url, SENSOR, interval, "max",
                                                                          start, end)])


def _status(base: str, device: str, start: datetime, end: datetime) -> int:
    return httpx.get(f"{base}/api/v1/sensors/{device}/series", params={
        "metric": "pm25", "interval": "1d", "start": start.isoformat(), "end": end.isoformat()}, timeout=30).status_code


def test_a_kept_answer_is_not_served_once_its_sensor_is_withdrawn(api, database_url):
    """Days before the roll-ups' watermarks are kept by the API until a roll-up or the registry changes; taking
    the sensor off the open data must end that at once, not when the answer would have aged out."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start, end = hour - timedelta(days=3), hour - timedelta(days=1)  # whole hours, all rolled up: kept
    assert _series(api, SENSOR, "1d", "avg", start, end)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update core.devices set public = false where device_id = %s", (SENSOR,))
    try:
        wait_for(lambda: _status(api, SENSOR, start, end) == 404, 5)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("update core.devices set public = true where device_id = %s", (SENSOR,))


def test_a_late_reading_replaces_a_kept_answer_after_the_maintenance_pass(api, database_url):
    from cityos.ingest.writer import Batch, write_batch
    from cityos.platform.db.maintenance import run_maintenance

    late = (datetime.now(UTC) - timedelta(days=3, hours=7)).replace(minute=41, second=5, microsecond=0)
    start = late.replace(minute=0, second=0) - timedelta(days=1)
    end = start + timedelta(days=2)  # whole hours, all rolled up: kept
    assert 7000.0 not in [v for _, v in _series(api, SENSOR, "1d", "max", start, end)]  # kept now
    batch = Batch(received_at=datetime.now(UTC))
    batch.add_rows("telemetry.measurements", [(late, SENSOR, "pm25", 7000.0)])
    with psycopg.connect(database_url, autocommit=True) as conn:
        write_batch(conn, batch)
    run_maintenance(database_url, 400, timezone=ZONE)
    wait_for(lambda: 7000.0 in [v for _, v in _series(api, SENSOR, "1d", "max", start, end)], 5)


PLOW = "plow-roll-01"


@pytest.fixture(scope="module")
def plow(api, database_url):
    """A public snowplow with a position every 10 minutes for the last three days, rolled up (removed after)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from telemetry.vehicle_positions where device_id = %s", (PLOW,))
        conn.execute("insert into core.devices (device_id, domain, kind, public) values (%s, 'vehicle', 'snowplow', "
                     "true) on conflict (device_id) do nothing", (PLOW,))
        conn.execute("""insert into telemetry.vehicle_positions (time, device_id, geom, speed_kmh)
                        select %s - make_interval(mins => 10 * n), %s, st_setsrid(st_point(139.93, 37.49), 4326),
                               case when n %% 7 = 0 then null else (n * 31) %% 60 end
                        from generate_series(1, 3 * 144) n""", (now, PLOW))
        conn.execute("delete from cityos_meta.rollup_watermarks")
        refresh_series_rollups(conn, ZONE)
    yield now
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from telemetry.vehicle_positions where device_id = %s", (PLOW,))
        conn.execute("delete from core.devices where device_id = %s", (PLOW,))


def test_a_vehicle_series_from_the_rollups_equals_the_answer_from_raw_positions(api, plow, database_url):
    hour = plow.replace(minute=0)
    for start, end in ((plow - timedelta(days=2, minutes=13), plow + timedelta(minutes=5)),  # up to now
                       (hour - timedelta(days=2), hour - timedelta(hours=3))):  # whole hours, all rolled up
        for interval, width in (("1h", "1 hour"), ("1d", "1 day")):
            for agg in ("avg", "max", "count"):
                answer = httpx.get(f"{api}/api/v1/sensors/{PLOW}/series", params={
                    "metric": "speed_kmh", "interval": interval, "agg": agg, "start": start.isoformat(),
                    "end": end.isoformat(), "limit": 1000}, timeout=30)
                answer.raise_for_status()
                got = [(datetime.fromisoformat(i["time"]), i["value"]) for i in answer.json()["items"]]
                with psycopg.connect(database_url) as conn:
                    want = conn.execute(
                        f"select time_bucket('{width}', time, %s), {agg}(speed_kmh)::float8 from "
                        "telemetry.vehicle_positions where device_id = %s and time >= %s and time < %s "
                        "group by 1 order by 1", (ZONE, PLOW, start, end)).fetchall()
                assert [t for t, _ in got] == [t for t, _ in want], (interval, agg, start)
                assert [v for _, v in got] == pytest.approx([v for _, v in want]), (interval, agg, start)
