"""The open sensor API: public devices only, latest values, downsampled series, formats, caching."""

from __future__ import annotations

import csv
import io

import httpx
import psycopg
import pytest

from cityos.ingest.devices import add_device


@pytest.fixture(scope="module")
def sensors(database_url) -> None:
    """A public patrol car and soil sensor with two hours of readings, and a private household meter."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from core.devices where device_id in ('car-open1', 'soil-open1', 'hems-priv1')")
        add_device(conn, "car-open1", "vehicle", kind="patrol_car", public=True)
        add_device(conn, "soil-open1", "env", kind="soil", public=True)
        add_device(conn, "hems-priv1", "hems")
        conn.execute("""insert into telemetry.vehicle_positions (time, device_id, geom, speed_kmh)
                        select '2026-11-20 00:00+00'::timestamptz + make_interval(mins => m), 'car-open1',
                               st_setsrid(st_point(139.93 + m * 0.0001, 37.49), 4326), m
                        from generate_series(0, 119) m""")
        conn.execute("""insert into telemetry.latest_positions (device_id, time, geom, speed_kmh)
                        values ('car-open1', '2026-11-20 01:59+00', st_setsrid(st_point(139.9419, 37.49), 4326), 119)
                        on conflict do nothing""")
        conn.execute("""insert into telemetry.measurements (time, device_id, metric, value)
                        select '2026-11-20 00:00+00'::timestamptz + make_interval(mins => m), 'soil-open1',
                               'soil_moisture_pct', m from generate_series(0, 119) m""")
        conn.execute("""insert into telemetry.latest_values (device_id, metric, time, value) values
                        ('soil-open1', 'soil_moisture_pct', '2026-11-20 01:59+00', 119),
                        ('hems-priv1', 'power_w', '2026-11-20 01:59+00', 800) on conflict do nothing""")


@pytest.fixture(scope="module")
def api(sensors, api):  # the shared API (tests/conftest.py), started once the sensors exist
    return api


def test_sensor_list_shows_only_public_devices(api):
    ids = {d["device_id"] for d in httpx.get(f"{api}/api/v1/sensors").json()["items"]}
    assert {"car-open1", "soil-open1"} <= ids
    assert "hems-priv1" not in ids


def test_household_meter_cannot_be_made_public(database_url):
    from cityos.ingest.devices import DeviceError

    with psycopg.connect(database_url, autocommit=True) as conn:
        with pytest.raises(DeviceError):
            add_device(conn, "hems-pub1", "hems", public=True)
        with pytest.raises(psycopg.errors.CheckViolation):  # and the database refuses it on its own
            conn.execute("insert into core.devices (device_id, domain, public) values ('hems-pub2', 'hems', true)")


def test_latest_values_never_include_private_devices(api):
    items = httpx.get(f"{api}/api/v1/sensors/latest").json()["items"]
    assert {"soil-open1"} <= {i["device_id"] for i in items}
    assert all(i["device_id"] != "hems-priv1" for i in items)


def test_near_filter_finds_devices_within_the_radius(api):
    near = httpx.get(f"{api}/api/v1/sensors", params={"near": "139.9419,37.49", "radius_m": 50}).json()["items"]
    far = httpx.get(f"{api}/api/v1/sensors", params={"near": "139.80,37.40", "radius_m": 50}).json()["items"]
    assert [d["device_id"] for d in near] == ["car-open1"]
    assert far == []


def test_bbox_filter_and_geojson_output(api):
    resp = httpx.get(f"{api}/api/v1/sensors", params={"bbox": "139.94,37.48,139.95,37.50", "format": "geojson"})
    assert resp.headers["content-type"] == "application/geo+json"
    features = resp.json()["features"]
    assert [f["properties"]["device_id"] for f in features] == ["car-open1"]
    assert features[0]["geometry"]["coordinates"] == [139.9419, 37.49]


def test_bad_bbox_is_a_clear_400(api):
    resp = httpx.get(f"{api}/api/v1/sensors", params={"bbox": "1,2,3"})
    assert resp.status_code == 400
    assert "west,south,east,north" in resp.text


def test_series_downsampled_per_hour(api):
    resp = httpx.get(f"{api}/api/v1/sensors/soil-open1/series", params={
        "metric": "soil_moisture_pct", "start": "2026-11-20T00:00:00Z", "end": "2026-11-20T02:00:00Z",
        "interval": "1h", "agg": "max"})
    assert [(i["time"], i["value"]) for i in resp.json()["items"]] == [
        ("2026-11-20T00:00:00+00:00", 59.0), ("2026-11-20T01:00:00+00:00", 119.0)]


def test_series_pages_with_a_cursor(api):
    params = {"metric": "speed_kmh", "start": "2026-11-20T00:00:00Z", "end": "2026-11-20T02:00:00Z", "limit": 50}
    first = httpx.get(f"{api}/api/v1/sensors/car-open1/series", params=params).json()
    second = httpx.get(f"{api}/api/v1/sensors/car-open1/series",
                       params={**params, "cursor": first["next_cursor"]}).json()
    values = [i["value"] for i in first["items"] + second["items"]]
    assert values == [float(m) for m in range(100)]


def test_series_of_a_private_device_is_not_found(api):
    resp = httpx.get(f"{api}/api/v1/sensors/hems-priv1/series", params={"metric": "power_w"})
    assert resp.status_code == 404


def test_csv_output_has_a_header(api):
    resp = httpx.get(f"{api}/api/v1/sensors/soil-open1/series", params={
        "metric": "soil_moisture_pct", "start": "2026-11-20T00:00:00Z", "end": "2026-11-20T00:03:00Z",
        "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert [r["value"] for r in rows] == ["0.0", "1.0", "2.0"]


def test_unchanged_response_answers_304_to_its_etag(api):
    first = httpx.get(f"{api}/api/v1/sensors")
    again = httpx.get(f"{api}/api/v1/sensors", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


def test_cors_allows_any_origin_to_read(api):
    resp = httpx.get(f"{api}/api/v1/sensors", headers={"Origin": "https://example.org"})
    assert resp.headers["access-control-allow-origin"] == "*"


def test_cors_lets_browsers_send_the_api_key_header(api):
    preflight = httpx.options(f"{api}/api/v1/sensors", headers={
        "Origin": "https://example.org", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-api-key"})
    assert preflight.status_code == 200
    assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()


@pytest.fixture(scope="module")
def patrol(api, database_url):
    """A public patrol car and a public bus, each seen 40 and 1 minutes ago."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from core.devices where device_id in ('car-live1', 'bus-live1')")
        for device, kind in (("car-live1", "patrol_car"), ("bus-live1", "bus")):
            add_device(conn, device, "vehicle", kind=kind, public=True)
            for minutes, lon in ((40, 139.70), (1, 139.71)):
                conn.execute("insert into telemetry.vehicle_positions (time, device_id, geom, speed_kmh) values "
                             "(%s, %s, st_setsrid(st_point(%s, 37.30), 4326), %s) on conflict do nothing",
                             (now - timedelta(minutes=minutes), device, lon, minutes))
            conn.execute("insert into telemetry.latest_positions (device_id, time, geom, speed_kmh) values "
                         "(%s, %s, st_setsrid(st_point(139.71, 37.30), 4326), 1) on conflict (device_id) do update "
                         "set time = excluded.time, geom = excluded.geom", (device, now - timedelta(minutes=1)))
            conn.execute("insert into telemetry.latest_values (device_id, metric, time, value) values "
                         "(%s, 'speed_kmh', %s, 1) on conflict do nothing", (device, now - timedelta(minutes=1)))
    yield now
    # the suite's database is shared: the car's 1-minute-old position would appear in other modules'
    # anonymous answers 14 minutes later
    with psycopg.connect(database_url, autocommit=True) as conn:
        for table in ("core.devices", "telemetry.vehicle_positions", "telemetry.latest_positions",
                      "telemetry.latest_values"):
            conn.execute(f"delete from {table} where device_id in ('car-live1', 'bus-live1')")


def test_a_patrol_car_is_shown_only_where_it_was_15_minutes_ago(api, patrol):
    sensors = {d["device_id"]: d for d in httpx.get(f"{api}/api/v1/sensors", params={"limit": 10_000}).json()["items"]}
    assert sensors["car-live1"]["lon"] == pytest.approx(139.70)  # the 40-minute-old position
    assert sensors["bus-live1"]["lon"] == pytest.approx(139.71)  # buses in real time
    latest = httpx.get(f"{api}/api/v1/sensors/latest", params={"ids": "car-live1,bus-live1"}).json()["items"]
    car = [i for i in latest if i["device_id"] == "car-live1"]
    assert car and all(i["lon"] == pytest.approx(139.70) for i in car)
    assert not [i for i in car if i["metric"] == "speed_kmh"]  # its real-time speed is not shown either


def test_a_patrol_car_series_ends_15_minutes_ago(api, patrol):
    from datetime import timedelta

    params = {"metric": "speed_kmh", "start": (patrol - timedelta(hours=1)).isoformat(),
              "end": (patrol + timedelta(minutes=1)).isoformat()}
    car = httpx.get(f"{api}/api/v1/sensors/car-live1/series", params=params).json()["items"]
    bus = httpx.get(f"{api}/api/v1/sensors/bus-live1/series", params=params).json()["items"]
    assert [i["value"] for i in car] == [40.0]
    assert [i["value"] for i in bus] == [40.0, 1.0]


def test_no_ogc_collection_carries_patrol_cars(api, patrol):
    collections = [c["id"] for c in httpx.get(f"{api}/ogc/collections").json()["collections"]]
    for collection in collections:
        body = httpx.get(f"{api}/ogc/collections/{collection}/items", params={"limit": 1000}).text
        assert "car-live1" not in body
