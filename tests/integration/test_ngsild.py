"""NGSI-LD against the real API process, database and broker: queries, temporal, producers, subscriptions, access.

The devices: a public snowplow and patrol car, a public weather station and soil sensor with fixed
locations, and a resident's household meter (never visible without telemetry:read).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import psycopg
import pytest

from cityos.ingest.broker_auth import PUBLIC_PASSWORD, PUBLIC_USER
from cityos.platform.auth import create_token
from cityos.platform.mqtt import BrokerAddress, new_client
from helpers import client_python, free_port, wait_for

#: Tests whose readings go through ingest's time window (producers) are marked ``windowed``: the suite
#: re-runs them with the Python clock a year ahead. The others compare with the database's clock (patrol-car
#: delay, temporal windows) or run a client whose clock cannot move, and are not.

NGSI = "/ngsi-ld/v1"
PLOW, CAR, WX, SOIL, HOME = "ngsi-plow-01", "ngsi-car-01", "ngsi-wx-01", "ngsi-soil-01", "ngsi-home-01"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
#: Subscriptions notify the test's own receivers on 127.0.0.1 (refused in production).
API_ENV = {"CITYOS_ANONYMOUS_RATE_PER_MINUTE": "10000", "CITYOS_NGSILD_NOTIFY_PRIVATE_HOSTS": "127.0.0.1"}


@pytest.fixture(scope="module")
def city(database_url) -> Iterator[tuple[datetime, dict[str, str]]]:
    """The devices and their readings; tokens (staff reader, producer, unrelated)."""
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(database_url, autocommit=True) as conn:
        _forget_devices(conn)
        devices = [(PLOW, "vehicle", "snowplow", True, {}), (CAR, "vehicle", "patrol_car", True, {}),
                   (WX, "env", "weather", True, {"lon": 139.9300, "lat": 37.4950}),
                   (SOIL, "env", "soil", True, {"lon": 139.9800, "lat": 37.5200}),
                   (HOME, "hems", "smart_meter", False, {})]
        for device, domain, kind, public, meta in devices:
            conn.execute("insert into core.devices (device_id, domain, kind, public, display_name, owner_subject, "
                         "metadata) values (%s, %s, %s, %s, %s, %s, %s)",
                         (device, domain, kind, public, f"{kind} {device[-2:]}",
                          "ngsi-resident" if domain == "hems" else None, json.dumps(meta)))
        # the car's track: one position a minute for the last hour (anonymous callers see it 15 min late)
        conn.execute("""insert into telemetry.vehicle_positions (time, device_id, geom, speed_kmh, heading_deg)
                        select %(now)s - make_interval(mins => m), %(car)s,
                               st_setsrid(st_point(139.93 + m * 0.0001, 37.49), 4326), 60 - m, 90
                        from generate_series(0, 59) m""", {"now": now, "car": CAR})
        conn.execute("""insert into telemetry.latest_positions (device_id, time, geom, speed_kmh, heading_deg)
                        values (%s, %s, st_setsrid(st_point(139.93, 37.49), 4326), 60, 90),
                               (%s, %s, st_setsrid(st_point(139.9305, 37.4952), 4326), 18.5, 180)""",
                     (CAR, now, PLOW, now))
        conn.execute("""insert into telemetry.vehicle_positions (time, device_id, geom, speed_kmh, heading_deg)
                        values (%s, %s, st_setsrid(st_point(139.9305, 37.4952), 4326), 18.5, 180)""", (now, PLOW))
        # the weather station: temperature every 10 minutes for two days; the soil sensor once
        conn.execute("""insert into telemetry.measurements (time, device_id, metric, value)
                        select %(now)s - make_interval(mins => 10 * m), %(wx)s, 'temperature', m %% 12
                        from generate_series(0, 287) m""", {"now": now, "wx": WX})
        conn.execute("insert into telemetry.measurements (time, device_id, metric, value) values (%s, %s, %s, 31.5)",
                     (now, SOIL, "soil_moisture_pct"))
        conn.execute("insert into telemetry.energy_readings (time, device_id, metric, value) values (%s, %s, %s, 777)",
                     (now, HOME, "power_w"))
        conn.execute("""insert into telemetry.latest_values (device_id, metric, time, value) values
                        (%s, 'temperature', %s, 0), (%s, 'soil_moisture_pct', %s, 31.5), (%s, 'power_w', %s, 777)""",
                     (WX, now, SOIL, now, HOME, now))
        tokens = {name: create_token(conn, f"ngsi-{name}", scopes) for name, scopes in
                  (("staff", ["telemetry:read"]), ("producer", ["telemetry:write"]), ("other", []))}
    yield now, tokens
    # the suite's database is shared: a public patrol car left with a recent track would move other modules'
    # anonymous answers as its positions pass the 15-minute delay
    with psycopg.connect(database_url, autocommit=True) as conn:
        _forget_devices(conn)


def _forget_devices(conn: psycopg.Connection) -> None:
    """Remove this module's devices, their readings and every subscription."""
    conn.execute("delete from core.devices where device_id like 'ngsi-%%'")
    for table in ("vehicle_positions", "latest_positions", "measurements", "energy_readings", "latest_values"):
        conn.execute(f"delete from telemetry.{table} where device_id like 'ngsi-%%'")
    conn.execute("delete from core.ngsild_subscriptions")


@pytest.fixture(scope="module")
def api(city, api):  # the shared API (tests/conftest.py), started once the city is planted
    return api


#: This module's devices (the suite's database holds other tests' public devices too).
MINE = r":ngsi-(plow|car|wx|soil|home)-01$"


def _get(api: str, path: str, token: str | None = None, **params) -> httpx.Response:
    """GET an NGSI-LD path; entity queries are narrowed to this module's devices unless they name ids."""
    if path in ("/entities", "/temporal/entities") and not {"id", "idPattern"} & set(params):
        params["idPattern"] = MINE
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(api + NGSI + path, params=params, headers=headers, timeout=30)


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [e["id"] for e in response.json()]


# -- context information ---------------------------------------------------------------------------------

def test_vehicles_are_entities_with_location_speed_and_heading(api):
    entity = _get(api, f"/entities/urn:ngsi-ld:Vehicle:{PLOW}").json()
    assert entity["type"] == "Vehicle"
    assert entity["location"]["type"] == "GeoProperty"
    assert entity["location"]["value"] == {"type": "Point", "coordinates": [139.9305, 37.4952]}
    assert entity["speed"] == {"type": "Property", "value": 18.5, "observedAt": entity["speed"]["observedAt"],
                               "unitCode": "KMH"}
    assert entity["category"]["value"] == "snowplow"


def test_anonymous_callers_never_see_household_devices(api):
    assert _ids(_get(api, "/entities", type="Device")) == [f"urn:ngsi-ld:Device:{SOIL}"]
    assert _get(api, f"/entities/urn:ngsi-ld:Device:{HOME}").status_code == 404
    assert _ids(_get(api, "/entities", q="power_w>0")) == []
    assert HOME not in _get(api, "/temporal/entities", type="Device").text
    assert "power_w" not in _get(api, "/attributes").text


def test_a_staff_token_sees_household_devices_and_its_call_is_audited(api, city, database_url):
    _, tokens = city
    with psycopg.connect(database_url) as conn:  # rows after this one (by id: the log's clock is the database's)
        last = conn.execute("select coalesce(max(id), 0) from core.audit_log").fetchone()[0]
    assert f"urn:ngsi-ld:Device:{HOME}" in _ids(_get(api, "/entities", tokens["staff"], type="Device"))
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("select actor, action, subject from core.audit_log where id > %s and actor = %s",
                            (last, "ngsi-staff")).fetchall()
    assert rows == [("ngsi-staff", "GET /ngsi-ld/v1/entities", "Device")]


def test_patrol_cars_are_shown_15_minutes_late_to_anonymous_callers(api, city):
    now, tokens = city
    public = _get(api, f"/entities/urn:ngsi-ld:Vehicle:{CAR}").json()
    staff = _get(api, f"/entities/urn:ngsi-ld:Vehicle:{CAR}", tokens["staff"]).json()
    assert datetime.fromisoformat(public["location"]["observedAt"]) <= now - timedelta(minutes=15)
    assert datetime.fromisoformat(staff["location"]["observedAt"]) == now


def test_q_filters_on_values_ranges_lists_and_observation_times(api, city):
    now, _ = city
    assert _ids(_get(api, "/entities", q="soil_moisture_pct>30")) == [f"urn:ngsi-ld:Device:{SOIL}"]
    assert _ids(_get(api, "/entities", q="soil_moisture_pct==40..50")) == []
    assert _ids(_get(api, "/entities", type="Vehicle", q='speed>10;category=="snowplow"')) == \
        [f"urn:ngsi-ld:Vehicle:{PLOW}"]
    assert _ids(_get(api, "/entities", q='category=="soil","weather"')) == \
        [f"urn:ngsi-ld:Device:{SOIL}", f"urn:ngsi-ld:WeatherObserved:{WX}"]
    stale = (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert f"urn:ngsi-ld:Device:{SOIL}" in _ids(_get(api, "/entities", q=f"soil_moisture_pct.observedAt>{stale}"))


def test_geo_queries_select_entities_by_distance_and_area(api):
    near = _get(api, "/entities", type="Vehicle,WeatherObserved,Device", georel="near;maxDistance==100",
                geometry="Point", coordinates="[139.9300,37.4950]")
    assert sorted(_ids(near)) == [f"urn:ngsi-ld:Vehicle:{PLOW}", f"urn:ngsi-ld:WeatherObserved:{WX}"]
    box = json.dumps([[[139.97, 37.51], [139.99, 37.51], [139.99, 37.53], [139.97, 37.53], [139.97, 37.51]]])
    inside = _get(api, "/entities", type="Device", georel="within", geometry="Polygon", coordinates=box)
    assert _ids(inside) == [f"urn:ngsi-ld:Device:{SOIL}"]


def test_key_values_count_and_paging_follow_the_standard(api):
    first = _get(api, "/entities", type="Vehicle,WeatherObserved,Device", options="keyValues", limit=2, count="true")
    assert first.headers["NGSILD-Results-Count"] == "4"
    assert 'rel="next"' in first.headers["Link"]
    entities = first.json()
    assert len(entities) == 2 and all(not isinstance(v, dict) or "coordinates" in v for e in entities
                                      for k, v in e.items() if k not in ("id", "type"))
    rest = _get(api, "/entities", type="Vehicle,WeatherObserved,Device", limit=2, offset=2)
    assert len(set(_ids(rest)) | {e["id"] for e in entities}) == 4


def test_answers_name_the_core_context_which_is_served_locally(api):
    plain = _get(api, "/entities", type="Vehicle")
    assert CORE in plain.headers["Link"] and "@context" not in plain.text
    ld = httpx.get(api + NGSI + "/entities", params={"type": "Vehicle"}, headers={"Accept": "application/ld+json"})
    assert ld.headers["content-type"].startswith("application/ld+json")
    assert all(e["@context"] == CORE for e in ld.json())
    local = httpx.get(api + NGSI + "/jsonldContexts/ngsi-ld-core-context-v1.8.jsonld")
    assert local.json()["@context"]["observedAt"]["@id"] == "ngsi-ld:observedAt"


def test_a_remote_context_the_server_cannot_fetch_is_refused_as_problem_details(api):
    response = httpx.get(api + NGSI + "/entities", params={"type": "Vehicle"},
                         headers={"Link": '<https://example.org/ctx.jsonld>; rel="http://www.w3.org/ns/json-ld#context"'
                                          '; type="application/ld+json"'})
    assert response.status_code == 503
    assert response.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/LdContextNotAvailable"


@pytest.mark.parametrize("params", [
    {"q": "speed>>1"}, {"q": "(speed>1"}, {"q": "x" * 5000}, {"q": "(" * 40 + "speed>1" + ")" * 40},
    {"type": "Vehicle", "georel": "near", "geometry": "Point", "coordinates": "[1,2]"},
    {"type": "Vehicle", "georel": "within", "geometry": "Polygon", "coordinates": "[[[0,0],[1,1]]]"},
    {"type": "Vehicle", "idPattern": "(("}, {"type": "Vehicle", "limit": "5000"},
    {"type": "Vehicle", "georel": "within", "geometry": "Circle", "coordinates": "[1,2]"},
])
def test_a_malformed_query_is_a_problem_details_answer_never_a_server_error(api, params):
    response = httpx.get(api + NGSI + "/entities", params=params, timeout=30)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["type"].startswith("https://uri.etsi.org/ngsi-ld/errors/")


# -- temporal ----------------------------------------------------------------------------------------------

def test_temporal_query_returns_the_last_n_instances(api):
    body = _get(api, f"/temporal/entities/urn:ngsi-ld:WeatherObserved:{WX}", attrs="temperature", lastN=3).json()
    values = [i["value"] for i in body["temperature"]]
    assert values == [2.0, 1.0, 0.0]  # oldest first of the newest three (m = 2, 1, 0)


def test_temporal_aggregation_matches_the_hypertable(api, city, database_url):
    now, _ = city
    start = (now - timedelta(days=1)).replace(minute=0, second=0)
    body = _get(api, "/temporal/entities", type="WeatherObserved", attrs="temperature", timerel="between",
                timeAt=start.isoformat(), endTimeAt=now.isoformat(), aggrMethods="avg,max,totalCount",
                aggrPeriodDuration="PT6H").json()
    series = body[0]["temperature"]
    with psycopg.connect(database_url) as conn:
        expected = conn.execute("""select time_bucket('6 hours', time, %s::timestamptz), avg(value), max(value),
                                          count(*) from telemetry.measurements
                                   where device_id = %s and metric = 'temperature' and time >= %s and time < %s
                                   group by 1 order by 1""",
                                (start, WX, start, now)).fetchall()
    assert [round(v, 6) for v, _, _ in series["avg"]] == [round(r[1], 6) for r in expected]
    assert [v for v, _, _ in series["totalCount"]] == [r[3] for r in expected]
    assert series["max"][0][1] == start.isoformat().replace("+00:00", "Z")


def test_a_patrol_cars_track_ends_15_minutes_ago_for_anonymous_callers(api, city):
    now, tokens = city
    public = _get(api, f"/temporal/entities/urn:ngsi-ld:Vehicle:{CAR}", attrs="speed").json()["speed"]
    staff = _get(api, f"/temporal/entities/urn:ngsi-ld:Vehicle:{CAR}", tokens["staff"], attrs="speed").json()
    assert max(datetime.fromisoformat(i["observedAt"]) for i in public) <= now - timedelta(minutes=15)
    assert len(staff["speed"]) == 60


# -- producers -----------------------------------------------------------------------------------------------

def _upsert(api: str, token: str, entities: list) -> httpx.Response:
    return httpx.post(api + NGSI + "/entityOperations/upsert", json=entities,
                      headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.mark.windowed
def test_an_upsert_lands_in_the_hypertable_and_the_latest_values(api, city, database_url):
    _, tokens = city
    t = datetime.now(UTC).replace(microsecond=0)
    response = _upsert(api, tokens["producer"], [
        {"id": f"urn:ngsi-ld:WeatherObserved:{WX}", "type": "WeatherObserved",
         "temperature": {"type": "Property", "value": -3.5, "observedAt": t.isoformat()},
         "relative_humidity": {"type": "Property", "value": 81, "observedAt": t.isoformat()}}])
    assert response.status_code == 204, response.text
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("select metric, value from telemetry.measurements where device_id = %s and time = %s "
                              "order by metric", (WX, t)).fetchall()
    assert stored == [("relative_humidity", 81.0), ("temperature", -3.5)]
    with psycopg.connect(database_url) as conn:  # counted in the device's ledger like an MQTT message
        ledger = conn.execute("select sum(messages), sum(stored) from core.device_ledger where device_id = %s",
                              (WX,)).fetchone()
    assert ledger[0] >= 1 and ledger[1] >= 2
    assert _get(api, f"/entities/urn:ngsi-ld:WeatherObserved:{WX}").json()["temperature"]["value"] == -3.5


@pytest.mark.windowed
def test_an_invalid_upsert_is_refused_with_its_reason_and_kept_as_a_dead_letter(api, city, database_url):
    _, tokens = city
    response = _upsert(api, tokens["producer"], [
        {"id": f"urn:ngsi-ld:Vehicle:{PLOW}", "type": "Vehicle",
         "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [139.93, 91.5]}}}])
    assert response.status_code == 207
    assert "out_of_range" in response.json()["errors"][0]["error"]["detail"]
    with psycopg.connect(database_url) as conn:
        reason = conn.execute("select reason from core.dead_letters where device_id = %s order by id desc limit 1",
                              (PLOW,)).fetchone()
    assert reason == ("out_of_range",)
    with psycopg.connect(database_url) as conn:
        refused = conn.execute("select refused from core.device_ledger where device_id = %s and refused <> '{}'",
                               (PLOW,)).fetchall()
    assert any(r[0].get("out_of_range") for r in refused)


def test_producing_needs_the_write_scope(api, city):
    _, tokens = city
    body = [{"id": f"urn:ngsi-ld:Device:{SOIL}", "type": "Device", "soil_moisture_pct": 10}]
    assert _upsert(api, tokens["staff"], body).status_code == 403
    assert httpx.post(api + NGSI + "/entityOperations/upsert", json=body).status_code == 401


# -- subscriptions -------------------------------------------------------------------------------------------

class Receiver:
    """An HTTP endpoint that records the notifications it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[float, float, dict]] = []  # (monotonic, wall clock, notification)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((time.monotonic(), time.time(), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = HTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.close()


def _notifier_listening(database_url: str) -> bool:
    """True once a notifier holds the deployment's lock on the test database and LISTENs."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        return bool(conn.execute("select count(*) from pg_stat_activity a join pg_locks l using (pid) "
                                 "where a.datname = current_database() and a.application_name = 'ngsild-notifier' "
                                 "and l.locktype = 'advisory' and l.granted").fetchone()[0])


def _subscribe(api: str, token: str, body: dict) -> httpx.Response:
    return httpx.post(api + NGSI + "/subscriptions", json=body, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.windowed
def test_a_subscription_is_notified_within_a_second_of_a_validated_reading(api, city, receiver, database_url):
    _, tokens = city
    created = _subscribe(api, tokens["other"], {
        "type": "Subscription", "entities": [{"type": "Device"}], "watchedAttributes": ["soil_moisture_pct"],
        "q": "soil_moisture_pct<20",
        "notification": {"endpoint": {"uri": f"http://127.0.0.1:{receiver.port}/notify"}, "format": "keyValues"}})
    assert created.status_code == 201, created.text
    wait_for(lambda: _notifier_listening(database_url), 10)
    t = datetime.now(UTC).replace(microsecond=0).isoformat()
    assert _upsert(api, tokens["producer"], [{"id": f"urn:ngsi-ld:Device:{SOIL}", "type": "Device",
                                               "soil_moisture_pct": {"type": "Property", "value": 12.5,
                                                                     "observedAt": t}}]).status_code == 204
    stored = time.monotonic()  # the upsert answers once its transaction committed
    wait_for(lambda: receiver.received, 5)
    at, _, notification = receiver.received[0]
    state = httpx.get(created.headers["Location"],
                      headers={"Authorization": f"Bearer {tokens['other']}"}).json().get("notification")
    assert at - stored < 1.0, f"upsert answered {t}, notified {at - stored:.2f} s later; subscription: {state}"
    assert notification["subscriptionId"] == created.headers["Location"].rsplit("/", 1)[-1]
    assert notification["data"] == [{"id": f"urn:ngsi-ld:Device:{SOIL}", "type": "Device",
                                     "name": "soil 01", "category": "soil",
                                     "location": {"type": "Point", "coordinates": [139.98, 37.52]},
                                     "soil_moisture_pct": 12.5}]


@pytest.mark.windowed
def test_an_invalid_reading_notifies_nobody(api, city, receiver):
    _, tokens = city
    _subscribe(api, tokens["other"], {"type": "Subscription", "entities": [{"type": "Vehicle"}],
                                      "notification": {"endpoint": {"uri": f"http://127.0.0.1:{receiver.port}/"}}})
    assert _upsert(api, tokens["producer"], [{"id": f"urn:ngsi-ld:Vehicle:{PLOW}", "type": "Vehicle",
                                               "speed": {"type": "Property", "value": 999}}]).status_code == 207
    time.sleep(1.5)
    assert receiver.received == []


@pytest.mark.windowed
def test_a_subscription_notifies_over_mqtt(api, city, test_broker, database_url):
    _, tokens = city
    service = BrokerAddress.parse(test_broker.url)
    topic = "cityos/public/v1/ngsi-ld/test"
    got: list[dict] = []
    subscribed = threading.Event()
    client = new_client(BrokerAddress.parse(f"mqtt://{PUBLIC_USER}:{PUBLIC_PASSWORD}@127.0.0.1:{service.port}"))
    client.on_message = lambda _c, _u, msg: got.append(json.loads(msg.payload))
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(service.host, service.port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    try:
        uri = f"mqtt://{service.username}:{service.password}@127.0.0.1:{service.port}/{topic}"
        assert _subscribe(api, tokens["other"], {"type": "Subscription", "entities": [{"type": "WeatherObserved"}],
                                                 "notification": {"endpoint": {"uri": uri}}}).status_code == 201
        assert subscribed.wait(10), "the test's MQTT subscription was not acknowledged"
        wait_for(lambda: _notifier_listening(database_url), 10)
        t = datetime.now(UTC).replace(microsecond=0).isoformat()
        _upsert(api, tokens["producer"], [{"id": f"urn:ngsi-ld:WeatherObserved:{WX}", "type": "WeatherObserved",
                                           "temperature": {"type": "Property", "value": 1.25, "observedAt": t}}])
        wait_for(lambda: got, 5)
        assert got[0]["body"]["data"][0]["temperature"]["value"] == 1.25
    finally:
        client.loop_stop()
        client.disconnect()


def test_subscriptions_belong_to_their_owner(api, city):
    _, tokens = city
    created = _subscribe(api, tokens["staff"], {"type": "Subscription", "entities": [{"type": "Vehicle"}],
                                                "notification": {"endpoint": {"uri": "http://127.0.0.1:9/"}}})
    location = created.headers["Location"]
    other = {"Authorization": f"Bearer {tokens['other']}"}
    assert httpx.get(location, headers=other).status_code == 404
    assert httpx.delete(location, headers=other).status_code == 404
    mine = {"Authorization": f"Bearer {tokens['staff']}"}
    assert httpx.patch(location, json={"throttling": 10}, headers=mine).status_code == 204
    assert httpx.get(location, headers=mine).json()["throttling"] == 10
    assert httpx.delete(location, headers=mine).status_code == 204


@pytest.mark.parametrize("uri", ["http://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data",
                                 "http://localhost:5000/api/3/action/package_list", "ftp://example.org/x"])
def test_a_subscription_to_an_address_inside_the_platform_is_refused(api, city, uri):
    _, tokens = city
    response = _subscribe(api, tokens["other"], {"type": "Subscription", "entities": [{"type": "Vehicle"}],
                                                 "notification": {"endpoint": {"uri": uri}}})
    assert response.status_code == 400
    assert response.json()["title"] == "BadRequestData"


# -- a real NGSI-LD client ------------------------------------------------------------------------------------
NGSILDCLIENT = "ngsildclient==0.5.2"


@pytest.fixture(scope="module")
def ngsildclient_python(settings) -> str:
    """Python of a virtual environment with Orange's ngsildclient from PyPI (its pins, such as httpx<0.24,
    clash with the platform's, so it lives apart; built once under the state folder)."""
    return client_python(settings.home, NGSILDCLIENT)


def test_orange_ngsildclient_queries_subscribes_reads_history_and_upserts(api, city, database_url,
                                                                         ngsildclient_python, receiver):
    import subprocess
    from pathlib import Path
    from urllib.parse import urlsplit

    _, tokens = city
    address = urlsplit(api)
    script = Path(__file__).with_name("clients") / "ngsildclient_session.py"
    notify = f"http://127.0.0.1:{receiver.port}/notify"
    wait_for(lambda: _notifier_listening(database_url), 10)  # the session's upsert must find a notifier
    run = subprocess.run([ngsildclient_python, str(script), address.hostname, str(address.port), tokens["producer"],
                          notify], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    # the suite's database holds other tests' public devices too: this module's must be there, or not
    assert {f"urn:ngsi-ld:Vehicle:{CAR}", f"urn:ngsi-ld:Vehicle:{PLOW}"} <= set(seen["vehicles"])
    assert f"urn:ngsi-ld:Device:{SOIL}" in seen["devices"] and f"urn:ngsi-ld:Device:{HOME}" not in seen["devices"]
    assert seen["devices_count"] == len(seen["devices"])
    assert f"urn:ngsi-ld:Device:{SOIL}" in seen["moist"]
    assert {f"urn:ngsi-ld:Vehicle:{PLOW}", f"urn:ngsi-ld:WeatherObserved:{WX}"} <= set(seen["near"])
    assert f"urn:ngsi-ld:Device:{SOIL}" not in seen["near"]
    assert f"urn:ngsi-ld:Vehicle:{PLOW}" in seen["moving_plows"] and f"urn:ngsi-ld:Vehicle:{CAR}" not in \
        seen["moving_plows"]
    assert (seen["plow_speed"], seen["plow_location"]) == (18.5, [139.9305, 37.4952])
    assert seen["temperature_values"] >= 288
    assert seen["avg_periods"] >= 4
    assert seen["upsert_ok"] is True
    assert seen["subscription"].startswith("urn:ngsi-ld:Subscription:")
    wait_for(lambda: [n for _, _, n in receiver.received if n["subscriptionId"] == seen["subscription"]], 5)
    arrived, notification = next((at, n) for _, at, n in receiver.received
                                 if n["subscriptionId"] == seen["subscription"])
    assert arrived - seen["upserted_at"] < 1.0  # the client's upsert to the notification (wall clocks, one host)
    assert notification["data"][0]["temperature"] == -7.25
    with psycopg.connect(database_url) as conn:
        assert conn.execute("select value from telemetry.latest_values where device_id = %s and metric = %s",
                            (WX, "temperature")).fetchone() == (-7.25,)


def test_a_developers_api_key_owns_its_subscriptions(api):
    keys = [httpx.post(api + "/api/v1/keys", json={"name": f"ngsi dev {n}", "contact": f"dev{n}@example.org"}
                       ).json()["api_key"] for n in (1, 2)]
    created = httpx.post(api + NGSI + "/subscriptions", headers={"X-API-Key": keys[0]},
                         json={"type": "Subscription", "entities": [{"type": "Vehicle"}],
                               "notification": {"endpoint": {"uri": "http://127.0.0.1:9/"}}})
    assert created.status_code == 201, created.text
    mine = httpx.get(api + NGSI + "/subscriptions", headers={"X-API-Key": keys[0]}).json()
    theirs = httpx.get(api + NGSI + "/subscriptions", headers={"X-API-Key": keys[1]}).json()
    assert [s["id"] for s in mine] == [created.headers["Location"].rsplit("/", 1)[-1]] and theirs == []
    assert httpx.post(api + NGSI + "/subscriptions", json={}).status_code == 401


@pytest.mark.windowed
def test_throttling_holds_later_changes_until_the_period_ends(api, city, receiver, database_url):
    _, tokens = city
    assert _subscribe(api, tokens["other"], {
        "type": "Subscription", "entities": [{"type": "Device", "id": f"urn:ngsi-ld:Device:{SOIL}"}],
        "throttling": 2, "notification": {"endpoint": {"uri": f"http://127.0.0.1:{receiver.port}/"},
                                          "format": "keyValues"}}).status_code == 201
    wait_for(lambda: _notifier_listening(database_url), 10)
    for value in (21.0, 22.0):
        t = datetime.now(UTC).isoformat()
        assert _upsert(api, tokens["producer"], [{"id": f"urn:ngsi-ld:Device:{SOIL}", "type": "Device",
                                                   "soil_moisture_pct": {"type": "Property", "value": value,
                                                                         "observedAt": t}}]).status_code == 204
        time.sleep(0.3)
    wait_for(lambda: len(receiver.received) >= 2, 10)
    (first_at, _, first), (second_at, _, second) = receiver.received[:2]
    assert first["data"][0]["soil_moisture_pct"] == 21.0
    assert second_at - first_at >= 1.5
    assert second["data"][0]["soil_moisture_pct"] == 22.0
