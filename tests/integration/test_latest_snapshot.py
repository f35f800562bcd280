"""The latest values of all sensors are encoded once per change of the data under them, not per request, and
a change (a new value, a revoked sensor) is in the next answer."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import psycopg
import pytest

from cityos.platform.api.responses import Encoded
from cityos.platform.api.snapshots import Snapshots
from helpers import wait_for

SENSORS = [f"env-snap-{n:02d}" for n in range(3)]
#: The route's own kept answer is under test, not the micro-cache in front of it (off whatever the caller set).
API_ENV = {"CITYOS_API_CACHE_S": "0"}
API_BROKER = False


@pytest.fixture(scope="module")
def sensors(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        for device in SENSORS:
            conn.execute("delete from telemetry.latest_values where device_id = %s", (device,))
            conn.execute("delete from core.devices where device_id = %s", (device,))
            conn.execute("insert into core.devices (device_id, domain, kind, public) values (%s, 'env', 'air', true)",
                         (device,))
            conn.execute("insert into telemetry.latest_values (device_id, metric, time, value) values "
                         "(%s, 'pm25', now(), 1)", (device,))
    return SENSORS


@pytest.fixture()
def snapshots(database_url):
    store = Snapshots(database_url, max_age_s=3600).start()
    wait_for(store.listening.is_set, 10)
    yield store
    store.stop()


def test_an_answer_is_built_once_while_nothing_changes(snapshots, sensors):
    built = []
    for _ in range(5):
        snapshots.get("all", lambda: built.append(1) or Encoded.of([{"n": len(built)}], "json"))
    assert len(built) == 1


def test_a_committed_change_of_a_latest_value_builds_the_answer_again(snapshots, sensors, database_url):
    snapshots.get("all", lambda: Encoded.of([], "json"))
    before = snapshots.generation
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update telemetry.latest_values set value = value + 1, time = now() where device_id = %s",
                     (sensors[0],))
    wait_for(lambda: snapshots.generation > before, 5)
    rebuilt = []
    snapshots.get("all", lambda: rebuilt.append(1) or Encoded.of([], "json"))
    assert rebuilt


def test_a_rolled_back_change_builds_nothing_again(snapshots, sensors, database_url):
    snapshots.get("all", lambda: Encoded.of([], "json"))
    before = snapshots.generation
    with psycopg.connect(database_url) as conn:
        conn.execute("update telemetry.latest_values set value = 99 where device_id = %s", (sensors[0],))
        conn.rollback()
        conn.execute("select pg_notify('cityos_test_marker', '')")  # something committed after it
        conn.commit()
    assert snapshots.generation == before


@pytest.fixture(scope="module")
def api(sensors, api):  # the shared API (tests/conftest.py), started once the sensors exist
    return api


def _values(base: str) -> dict[str, float]:
    items = httpx.get(f"{base}/api/v1/sensors/latest", params={"metric": "pm25"}, timeout=30).json()["items"]
    return {i["device_id"]: i["value"] for i in items if i["device_id"] in SENSORS}


def test_the_route_shows_a_new_value_in_the_next_answer(api, database_url):
    assert _values(api)  # the answer is now kept
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update telemetry.latest_values set value = 42, time = %s where device_id = %s",
                     (datetime.now(UTC), SENSORS[1]))
    assert wait_for(lambda: _values(api).get(SENSORS[1]) == 42, 2, interval=0.05)


def test_a_revoked_sensor_leaves_the_kept_answer(api, database_url):
    assert SENSORS[2] in _values(api)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update core.devices set revoked_at = now() where device_id = %s", (SENSORS[2],))
    assert wait_for(lambda: SENSORS[2] not in _values(api), 2, interval=0.05)
