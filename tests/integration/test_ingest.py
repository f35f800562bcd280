"""MQTT ingest end to end: real broker, real worker processes, real TimescaleDB."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from publisher import Publisher, publish_once

from helpers import wait_for

# Times here pass ingest's window relative to now: tests/integration/test_time_windows.py re-runs
# these tests with the clock a year ahead.
pytestmark = pytest.mark.windowed

def _now_iso(offset_s: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=offset_s)).isoformat()


def _count(url: str, sql: str, *args) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchone()[0]


def _dead_letters(url: str, device_id: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("select reason, detail, payload from core.dead_letters where device_id = %s order by id",
                            (device_id,)).fetchall()


def test_reading_published_by_a_device_is_stored(workers, register, test_broker, database_url):
    password = register("hems-in1", "hems")
    ok, reason = publish_once(test_broker.device_url("hems-in1", password), "cityos/v1/hems/hems-in1/readings",
                              json.dumps({"t": _now_iso(), "power_w": 512.5, "import_kwh": 1021.25}))
    assert ok, reason
    wait_for(lambda: _count(database_url, "select count(*) from telemetry.energy_readings where device_id = %s",
                            "hems-in1") == 2, timeout=10)


def test_vehicle_position_is_stored_as_a_point(workers, register, test_broker, database_url):
    password = register("plow-in1", "vehicle", kind="snowplow")
    reading = {"t": _now_iso(), "lat": 37.4947, "lon": 139.9297, "speed_kmh": 18.0, "heading_deg": 90,
               "accel_long": -1.2, "role": "snowplow", "blade_down": True}
    ok, reason = publish_once(test_broker.device_url("plow-in1", password), "cityos/v1/vehicle/plow-in1/readings",
                              json.dumps(reading))
    assert ok, reason
    wait_for(lambda: _count(database_url, "select count(*) from telemetry.vehicle_positions where device_id = %s "
                            "and st_x(geom) = 139.9297 and blade_down", "plow-in1") == 1, timeout=10)


def test_broker_refuses_a_device_publishing_under_another_id(workers, register, test_broker, database_url):
    password = register("hems-in2", "hems")
    register("hems-in3", "hems")
    ok, _ = publish_once(test_broker.device_url("hems-in2", password), "cityos/v1/hems/hems-in3/readings",
                         json.dumps({"t": _now_iso(), "power_w": 1}))
    assert not ok
    assert _count(database_url, "select count(*) from telemetry.energy_readings where device_id = 'hems-in3'") == 0


def test_broker_refuses_unknown_credentials(test_broker):
    with pytest.raises(ConnectionRefusedError), Publisher(test_broker.device_url("hems-nobody", "guess")):
        pass


def test_message_from_an_unregistered_device_is_dead_lettered(workers, test_broker, database_url):
    ok, _ = publish_once(test_broker.url, "cityos/v1/hems/hems-ghost/readings",
                         json.dumps({"t": _now_iso(), "power_w": 1}))
    assert ok
    letters = wait_for(lambda: _dead_letters(database_url, "hems-ghost"), timeout=10)
    assert letters[0][0] == "unknown_device"
    assert json.loads(bytes(letters[0][2]))["power_w"] == 1


def test_malformed_payload_is_dead_lettered_with_its_reason(workers, register, test_broker, database_url):
    password = register("hems-in4", "hems")
    ok, _ = publish_once(test_broker.device_url("hems-in4", password), "cityos/v1/hems/hems-in4/readings",
                         b'{"t": "yesterday", "power_w": 1')
    assert ok
    letters = wait_for(lambda: _dead_letters(database_url, "hems-in4"), timeout=10)
    assert letters[0][0] == "bad_json"
    assert bytes(letters[0][2]) == b'{"t": "yesterday", "power_w": 1'


def test_health_reading_without_consent_is_dead_lettered_without_its_payload(workers, register, test_broker,
                                                                             database_url):
    password = register("wear-in1", "health", owner_subject="subj-noconsent")
    ok, _ = publish_once(test_broker.device_url("wear-in1", password), "cityos/v1/health/wear-in1/readings",
                         json.dumps({"t": _now_iso(), "heart_rate_bpm": 71}))
    assert ok
    letters = wait_for(lambda: _dead_letters(database_url, "wear-in1"), timeout=10)
    reason, detail, payload = letters[0]
    assert reason == "no_consent"
    assert bytes(payload) == b""
    assert "sha256" in detail
    assert _count(database_url, "select count(*) from telemetry.health_readings where device_id = 'wear-in1'") == 0


def test_health_reading_with_consent_is_stored(workers, register, test_broker, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("insert into core.consent_events (subject_id, category, purpose, action, actor) "
                     "values ('subj-yes', 'health', 'services', 'grant', 'test')")
    password = register("wear-in2", "health", owner_subject="subj-yes")
    ok, _ = publish_once(test_broker.device_url("wear-in2", password), "cityos/v1/health/wear-in2/readings",
                         json.dumps({"t": _now_iso(), "heart_rate_bpm": 64}))
    assert ok
    wait_for(lambda: _count(database_url, "select count(*) from telemetry.health_readings where device_id = %s",
                            "wear-in2") == 1, timeout=15)


def test_same_message_delivered_twice_makes_one_row(workers, register, test_broker, database_url):
    password = register("hems-in5", "hems")
    payload = json.dumps({"t": _now_iso(-3600), "power_w": 300})
    url = test_broker.device_url("hems-in5", password)
    with Publisher(url) as pub:  # one connection: the broker delivers its messages in order
        for key, body in (("first", payload), ("again", payload),
                          ("marker", json.dumps({"t": _now_iso(-60), "power_w": 301}))):
            pub.publish("cityos/v1/hems/hems-in5/readings", body, key=key)
        assert pub.wait_acked(3, 5)
    # the marker, sent after both copies, is stored only once the copies were handled
    wait_for(lambda: _count(database_url, "select count(*) from telemetry.energy_readings where device_id = 'hems-in5' "
                                          "and value = 301") == 1, timeout=10)
    assert _count(database_url, "select count(*) from telemetry.energy_readings where device_id = 'hems-in5' "
                                "and value = 300") == 1
    assert _dead_letters(database_url, "hems-in5") == []


def test_late_reading_is_stored_under_its_observation_time(workers, register, test_broker, database_url):
    password = register("hems-in6", "hems")
    observed = datetime.now(UTC) - timedelta(hours=6)
    assert publish_once(test_broker.device_url("hems-in6", password), "cityos/v1/hems/hems-in6/readings",
                        json.dumps({"t": observed.isoformat(), "power_w": 42}))[0]
    stored = wait_for(lambda: _count(database_url, "select count(*) from telemetry.energy_readings where "
                                     "device_id = 'hems-in6' and time = %s", observed), timeout=10)
    assert stored == 1


def test_revoked_device_is_refused_within_seconds(workers, register, test_broker, database_url):
    from cityos.ingest.devices import revoke_device

    password = register("hems-in7", "hems")
    url = test_broker.device_url("hems-in7", password)
    assert publish_once(url, "cityos/v1/hems/hems-in7/readings", json.dumps({"t": _now_iso(), "power_w": 1}))[0]
    with psycopg.connect(database_url, autocommit=True) as conn:
        revoke_device(conn, "hems-in7")
    test_broker.sync(database_url)

    def refused() -> bool:
        try:
            with Publisher(url):
                return False
        except ConnectionRefusedError:
            return True

    wait_for(refused, timeout=5)


def test_dead_letter_is_stored_when_replayed_after_the_device_is_registered(workers, register, test_broker,
                                                                            database_url):
    from cityos.ingest.deadletters import replay

    assert publish_once(test_broker.url, "cityos/v1/hems/hems-in8/readings",
                        json.dumps({"t": _now_iso(), "power_w": 77}))[0]
    wait_for(lambda: _dead_letters(database_url, "hems-in8"), timeout=10)
    register("hems-in8", "hems")
    with psycopg.connect(database_url) as conn:
        result = replay(conn, reason="unknown_device")
    assert result.stored >= 1
    assert _count(database_url, "select count(*) from telemetry.energy_readings where device_id = 'hems-in8'") == 1
    assert _count(database_url, "select count(*) from core.dead_letters where device_id = 'hems-in8' "
                  "and replay_result = 'stored'") == 1


def test_batch_message_stores_every_reading(workers, register, test_broker, database_url):
    password = register("hems-in9", "hems")
    start = datetime.now(UTC) - timedelta(minutes=30)
    batch = {"batch": [{"t": (start + timedelta(seconds=i)).isoformat(), "power_w": i} for i in range(1000)]}
    assert publish_once(test_broker.device_url("hems-in9", password), "cityos/v1/hems/hems-in9/readings",
                        json.dumps(batch))[0]
    wait_for(lambda: _count(database_url, "select count(*) from telemetry.energy_readings where "
                            "device_id = 'hems-in9'") == 1000, timeout=10)


def test_tls_listener_accepts_clients_that_trust_the_local_ca(settings, tmp_path):
    import os
    import shutil
    from pathlib import Path

    from servers import TestBroker

    from cityos.platform.mqtt import check_broker
    from helpers import free_port

    home = Path(settings.home) / "test-runs" / f"tls-{os.getpid()}"
    shutil.rmtree(home, ignore_errors=True)
    tls_port = free_port()
    broker = TestBroker(home, tls_port=tls_port)
    broker.start()
    try:
        password = broker.broker.secrets.get("MQTT_SERVICE_PASSWORD")
        url = f"mqtts://cityos-service:{password}@127.0.0.1:{tls_port}"
        ok, reason = check_broker(url, ca_file=str(broker.broker.ca_file()))
        assert ok, reason
        untrusted, _ = check_broker(url)  # the system CAs do not know the local CA
        assert not untrusted
    finally:
        broker.stop()
        shutil.rmtree(home, ignore_errors=True)


def test_revoked_device_still_connected_cannot_store_readings(workers, register, test_broker, database_url):
    """Once the workers' registry refresh (CITYOS_INGEST_ADMISSION_REFRESH_S, 0.2 s in tests) has seen the
    revocation, the still-connected (and still broker-authorised) device's readings are refused: the test
    waits on that refusal, then shows that a further reading is refused too and nothing more is stored."""
    from cityos.ingest.devices import revoke_device

    password = register("hems-in10", "hems")
    stored_sql = "select count(*) from telemetry.energy_readings where device_id = 'hems-in10'"
    sent = 0
    with Publisher(test_broker.device_url("hems-in10", password)) as pub:

        def send_and_judge() -> str:
            """Publish one reading and wait until the workers stored or refused it; the last verdict."""
            nonlocal sent
            sent += 1
            pub.publish("cityos/v1/hems/hems-in10/readings", json.dumps({"t": _now_iso(), "power_w": sent}), key=sent)
            assert pub.wait_acked(sent, 5)
            wait_for(lambda: _count(database_url, stored_sql) + len(_dead_letters(database_url, "hems-in10")) >= sent,
                     timeout=10)
            letters = _dead_letters(database_url, "hems-in10")
            return letters[-1][0] if letters else "stored"

        with psycopg.connect(database_url, autocommit=True) as conn:
            revoke_device(conn, "hems-in10")
        # The broker is not told (a sync would disconnect the device): the window before it learns, where
        # the workers alone must refuse.
        wait_for(lambda: send_and_judge() == "revoked_device", timeout=20, interval=0)
        stored = _count(database_url, stored_sql)
        assert send_and_judge() == "revoked_device"
    assert _count(database_url, stored_sql) == stored
    assert {reason for reason, _detail, _payload in _dead_letters(database_url, "hems-in10")} == {"revoked_device"}


def test_a_patrol_car_record_with_the_portals_field_names_is_stored_over_mqtt(workers, register, test_broker,
                                                                             database_url):
    """DATA for CITIZEN's JSON output names the time measurement_datetime / measurement_ms."""
    password = register("car-d4c1", "vehicle", kind="patrol_car")
    jst = datetime.now(UTC) + timedelta(hours=9)
    record = {"car_name": "公用車1", "measurement_datetime": jst.strftime("%Y-%m-%d %H:%M:%S"), "measurement_ms": 500,
              "gps_error_meter": "4", "latitude": "37.4947", "longitude": "139.9297", "accel_x_transverse": "0.05",
              "accel_y_longitudinal": "-0.3"}
    ok, reason = publish_once(test_broker.device_url("car-d4c1", password), "cityos/v1/vehicle/car-d4c1/d4c",
                              json.dumps(record, ensure_ascii=False))
    assert ok, reason
    wait_for(lambda: _count(database_url, "select count(*) from telemetry.vehicle_positions where device_id = "
                            "'car-d4c1' and extract(milliseconds from time)::int %% 1000 = 500") == 1, timeout=10)
    assert _dead_letters(database_url, "car-d4c1") == []
