"""The SensorThings API under /sta/v1.1, read by real STA clients against the running service.

Planted: a public snowplow with a week of positions, a public patrol car (shown 15 minutes late), a public
environment sensor, a non-public city vehicle, and a household meter and a wearable whose values must never
appear. The clients are Fraunhofer's ``frost-sta-client``, ``stapy`` (in its own virtual environment) and plain
HTTP (httpx) following ``@iot.nextLink``.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import frost_sta_client as fsc
import httpx
import psycopg
import pytest

from cityos.platform.auth import create_token
from helpers import client_python

NOW = datetime.now(UTC).replace(microsecond=0)
PLOW, PATROL, SENSOR, HIDDEN = "sta-plow-01", "sta-patrol-01", "sta-soil-01", "sta-hidden-01"
HOME, WEAR = "sta-home-01", "sta-wear-01"
SECRET = 31337.5
#: the snowplow's positions: one every 10 minutes for a week, speed = minutes since the start modulo 60
PLOW_POINTS = 7 * 24 * 6


#: every device the module plants (removed again when it is done: other modules share the database)
PLANTED = (PLOW, PATROL, SENSOR, HIDDEN, HOME, WEAR, "sta-post-01", "sta-mq-soil-01")


def _remove(conn) -> None:
    for device in PLANTED:
        conn.execute("delete from core.devices where device_id = %s", (device,))
        for table in ("vehicle_positions", "measurements", "energy_readings", "health_readings", "latest_values",
                      "latest_positions", "measurements_hourly", "measurements_daily"):
            conn.execute(f"delete from telemetry.{table} where device_id = %s", (device,))


def _plant(conn) -> None:
    _remove(conn)
    rows = [(PLOW, "vehicle", "snowplow", True, "除雪車1"), (PATROL, "vehicle", "patrol_car", True, "パトロール1"),
            (SENSOR, "env", "soil", True, "土壌センサー"), (HIDDEN, "vehicle", "official_car", False, "公用車"),
            (HOME, "hems", "meter", False, ""), (WEAR, "health", "band", False, "")]
    for device, domain, kind, public, name in rows:
        conn.execute("insert into core.devices (device_id, domain, kind, public, display_name, owner_subject) "
                     "values (%s, %s, %s, %s, %s, %s)",
                     (device, domain, kind, public, name, "sta-subject" if domain in ("hems", "health") else None))
    start = NOW - timedelta(days=7)
    with conn.cursor() as cur:
        with cur.copy("copy telemetry.vehicle_positions (time, device_id, geom, speed_kmh, heading_deg) "
                      "from stdin") as copy:
            for i in range(PLOW_POINTS):
                t = start + timedelta(minutes=10 * i)
                copy.write_row((t, PLOW, f"SRID=4326;POINT({139.90 + i * 1e-5} 37.49)", float(i % 60), 90.0))
        for minutes in (1, 30):  # the patrol car: one position now, one half an hour ago
            cur.execute("insert into telemetry.vehicle_positions (time, device_id, geom, speed_kmh) values "
                        "(%s, %s, st_point(139.93, 37.50, 4326), %s)", (NOW - timedelta(minutes=minutes), PATROL,
                                                                        float(minutes)))
        cur.execute("insert into telemetry.vehicle_positions (time, device_id, geom, speed_kmh) values "
                    "(%s, %s, st_point(139.95, 37.51, 4326), 12)", (NOW - timedelta(minutes=5), HIDDEN))
        for device in (PLOW, PATROL, HIDDEN):
            cur.execute("insert into telemetry.latest_positions (device_id, time, geom, speed_kmh) "
                        "select device_id, time, geom, speed_kmh from telemetry.vehicle_positions "
                        "where device_id = %s order by time desc limit 1", (device,))
        for hours in range(48):
            cur.execute("insert into telemetry.measurements (time, device_id, metric, value) values "
                        "(%s, %s, 'soil_moisture', %s)", (NOW - timedelta(hours=hours), SENSOR, 20.0 + hours))
        cur.execute("insert into telemetry.latest_values (device_id, metric, time, value) values "
                    "(%s, 'soil_moisture', %s, 20)", (SENSOR, NOW))
        cur.execute("insert into telemetry.energy_readings (time, device_id, metric, value) values (%s, %s, "
                    "'power_w', %s)", (NOW, HOME, SECRET))
        cur.execute("insert into telemetry.health_readings (time, device_id, metric, value) values (%s, %s, "
                    "'heart_rate_bpm', 99)", (NOW, WEAR))
        for device, metric in ((HOME, "power_w"), (WEAR, "heart_rate_bpm")):
            cur.execute("insert into telemetry.latest_values (device_id, metric, time, value) values "
                        "(%s, %s, %s, %s)", (device, metric, NOW, SECRET))


API_ENV = {"CITYOS_ANONYMOUS_RATE_PER_MINUTE": "100000"}


@pytest.fixture(scope="module")
def planted(database_url):
    """The module's devices and readings, removed again when the module ends (after its API stopped)."""
    global NOW  # "now" when the module's data is planted, not when the suite was collected (minutes earlier)
    NOW = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(database_url, autocommit=True) as conn:
        _plant(conn)
    yield
    with psycopg.connect(database_url, autocommit=True) as conn:
        _remove(conn)  # a public patrol car with recent positions would change other modules' answers


@pytest.fixture(scope="module")
def api(planted, api):  # the shared API (tests/conftest.py), started once the devices exist
    return api


@pytest.fixture(scope="module")
def sta(api):
    """The base URL of the SensorThings service of a running API with the planted devices."""
    return api + "/sta/v1.1"


@pytest.fixture(scope="module")
def staff_token(database_url) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return create_token(conn, "sta-staff", ["sta:read"])


def _get(url: str, **params) -> httpx.Response:
    return httpx.get(url, params=params, timeout=30)


def _ids(body: dict) -> set[str]:
    return {e["@iot.id"] for e in body["value"]}


# -- real client: frost-sta-client ---------------------------------------------------------------------------

def test_frost_client_lists_the_public_things_only(sta):
    service = fsc.SensorThingsService(sta)
    things = {t.id: t for t in service.things().query().filter("startswith(id, 'sta-')").list()}
    assert set(things) == {PLOW, PATROL, SENSOR}
    assert things[PLOW].name == "除雪車1"


def test_frost_client_reads_a_datastream_with_its_unit_from_the_catalog(sta):
    service = fsc.SensorThingsService(sta)
    streams = service.datastreams().query().filter(f"Thing/id eq '{PLOW}' and ObservedProperty/id eq 'speed_kmh'") \
        .expand("Thing,ObservedProperty").list()
    stream = next(iter(streams))
    assert stream.id == f"{PLOW}:speed_kmh"
    assert stream.unit_of_measurement.symbol == "km/h"
    assert stream.thing.id == PLOW and stream.observed_property.id == "speed_kmh"


def test_frost_client_pages_observations_with_a_filter(sta):
    service = fsc.SensorThingsService(sta)
    since = (NOW - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    stream = service.datastreams().find(f"{PLOW}:speed_kmh")
    query = service.observations().query()
    query.parent = stream
    observations = list(query.filter(f"phenomenonTime ge {since} and result lt 30").orderby("phenomenonTime", "asc")
                        .top(20).list())
    expected = [i for i in range(PLOW_POINTS) if NOW - timedelta(days=7) + timedelta(minutes=10 * i) >=
                NOW - timedelta(days=1) and i % 60 < 30]
    assert [o.result for o in observations] == [float(i % 60) for i in expected]


def test_frost_client_reads_the_location_of_a_thing(sta):
    service = fsc.SensorThingsService(sta)
    thing = service.things().find(PLOW)
    locations = list(thing.get_locations().query().list()) if hasattr(thing, "get_locations") else \
        list(service.locations().query().filter(f"Things/id eq '{PLOW}'").list())
    assert len(locations) == 1


# -- real client: stapy (its pins clash with the platform's: it runs in its own virtual environment) -----------
STAPY = "stapy==0.3.1"


def _zulu(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def stapy_read(sta, settings, tmp_path_factory) -> dict:
    """What one stapy session read from the service (Things, Datastreams, a nested expand, two days of two
    Datastreams' Observations), as printed by clients/stapy_session.py."""
    python = client_python(settings.home, STAPY)
    script = Path(__file__).with_name("clients") / "stapy_session.py"
    start, end = NOW - timedelta(days=2), NOW - timedelta(days=1)
    run = subprocess.run([python, str(script), sta, PLOW, SENSOR, _zulu(start), _zulu(end)], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path_factory.mktemp("stapy"))
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def _series(sta: str, device: str, metric: str) -> list[tuple[datetime, float]]:
    """The platform's own answer for the same device, metric and period as the stapy session's."""
    start, end = NOW - timedelta(days=2), NOW - timedelta(days=1)
    response = httpx.get(f"{sta.removesuffix('/sta/v1.1')}/api/v1/sensors/{device}/series", params={
        "metric": metric, "start": start.isoformat(), "end": end.isoformat(), "limit": 10000}, timeout=30)
    return [(datetime.fromisoformat(row["time"]), row["value"]) for row in response.json()["items"]]


def test_stapy_pages_through_the_public_things_only(stapy_read):
    assert stapy_read["things"] == {PLOW: "除雪車1", PATROL: "パトロール1", SENSOR: "土壌センサー"}


def test_stapy_reads_a_things_datastreams_with_the_thing_expanded(stapy_read):
    streams = {stream: (symbol, thing) for stream, symbol, thing in stapy_read["datastreams"]}
    assert streams[f"{PLOW}:speed_kmh"] == ("km/h", "除雪車1")
    assert {thing for _, thing in streams.values()} == {"除雪車1"}


def test_stapy_reads_a_nested_expand_with_its_own_filter_and_top(stapy_read):
    [stream] = stapy_read["nested"]
    assert stream["@iot.id"] == f"{PLOW}:speed_kmh"
    assert len(stream["Observations"]) == 3 and all(set(o) == {"result"} for o in stream["Observations"])


@pytest.mark.parametrize(("read", "device", "metric", "rows"), [
    ("speeds", PLOW, "speed_kmh", 6 * 24), ("moisture", SENSOR, "soil_moisture", 23)])
def test_stapy_pages_the_same_observations_as_the_platform_series_route(stapy_read, sta, read, device, metric,
                                                                       rows):
    theirs = [(datetime.fromisoformat(time), value) for time, value in stapy_read[read]]
    assert theirs == _series(sta, device, metric)
    assert len(theirs) == rows  # more than one page of 20: stapy followed the @iot.nextLink


# -- plain HTTP: paging, options, refusals -------------------------------------------------------------------

def test_next_links_walk_a_week_of_observations_without_gaps_or_repeats(sta):
    url = f"{sta}/Datastreams('{PLOW}:speed_kmh')/Observations?$top=100&$count=true"
    seen, total = [], None
    while url:
        body = httpx.get(url, timeout=30).json()
        total = body.get("@iot.count", total)
        seen += [o["@iot.id"] for o in body["value"]]
        url = body.get("@iot.nextLink")
        assert url is None or url.startswith("http")
    assert total == PLOW_POINTS and len(seen) == PLOW_POINTS == len(set(seen))


def test_nested_expand_applies_its_own_options(sta):
    body = _get(f"{sta}/Things('{PLOW}')",
                **{"$expand": "Datastreams($filter=ObservedProperty/id eq 'speed_kmh';"
                              "$expand=Observations($top=2;$orderby=phenomenonTime desc;$select=result))"}).json()
    (stream,) = body["Datastreams"]
    assert stream["@iot.id"] == f"{PLOW}:speed_kmh"
    assert len(stream["Observations"]) == 2 and set(stream["Observations"][0]) == {"result"}
    assert "Observations@iot.nextLink" in stream


def test_a_filter_across_a_to_many_path_matches_a_thing_with_any_such_datastream(sta):
    body = _get(f"{sta}/Things", **{"$filter": "Datastreams/ObservedProperty/name eq 'soil_moisture' and "
                                               "startswith(id, 'sta-')"}).json()
    assert _ids(body) == {SENSOR}
    body = _get(f"{sta}/Things", **{"$filter": "Datastreams/Observations/result eq 67 and startswith(id, 'sta-')"})
    assert _ids(body.json()) == {SENSOR}  # the sensor's hourly readings are 20 ... 67; the vehicles' 0-59 and 90


def test_in_matches_any_value_of_its_list(sta):
    body = _get(f"{sta}/Things", **{"$filter": f"id in ('{PLOW}', '{SENSOR}', '{HIDDEN}', '{HOME}')"}).json()
    assert _ids(body) == {PLOW, SENSOR}  # the hidden car and the household meter stay invisible
    assert _get(f"{sta}/Things", **{"$filter": "id in ('x', 1)"}).status_code == 400


def test_count_inside_expand_is_each_parents_total(sta):
    body = _get(f"{sta}/Things('{PLOW}')", **{"$expand": "Datastreams($count=true;$top=1)"}).json()
    whole = _get(f"{sta}/Things('{PLOW}')/Datastreams", **{"$count": "true"}).json()
    assert body["Datastreams@iot.count"] == whole["@iot.count"] == len(whole["value"]) > 1
    assert len(body["Datastreams"]) == 1


def test_top_zero_with_count_is_the_count_alone_without_a_next_link(sta):
    body = _get(f"{sta}/Locations", **{"$top": "0", "$count": "true"}).json()  # how QGIS's provider counts
    assert body["value"] == [] and body["@iot.count"] >= 2 and "@iot.nextLink" not in body


def test_select_top_skip_and_orderby(sta):
    body = _get(f"{sta}/Things", **{"$select": "id,name", "$orderby": "name desc", "$top": "2", "$skip": "0",
                                    "$filter": "startswith(id, 'sta-')"}).json()
    assert [set(t) for t in body["value"]] == [{"@iot.id", "name"}] * 2
    assert [t["name"] for t in body["value"]] == sorted([t["name"] for t in body["value"]], reverse=True)
    assert "@iot.nextLink" in body


def test_geo_filter_finds_the_vehicle_near_a_point(sta):
    body = _get(f"{sta}/Locations", **{"$filter": "geo.distance(location, geography'POINT(139.93 37.50)') lt 0.001"
                                       " or st_within(location, geography'POLYGON((139.89 37.48, 139.99 37.48, "
                                       "139.99 37.52, 139.89 37.52, 139.89 37.48))')"}).json()
    assert {PLOW, PATROL} <= _ids(body)


def test_the_patrol_car_is_shown_fifteen_minutes_late_and_the_hidden_car_not_at_all(sta):
    body = _get(f"{sta}/Datastreams('{PATROL}:speed_kmh')/Observations").json()
    assert [o["result"] for o in body["value"]] == [30.0]
    assert _get(f"{sta}/Things('{HIDDEN}')").status_code == 404


@pytest.mark.parametrize("query", [
    {"$filter": "name gt 5"}, {"$filter": "unknown eq 1"}, {"$filter": "((("}, {"$filter": "result div 0 gt 1"},
    {"$filter": "st_within(location, geography'POLYGON((0 0, 1 1')"}, {"$orderby": "properties"},
    {"$top": "-1"}, {"$expand": "Nothing"}, {"$resultFormat": "dataArray"}, {"$filter": "not " * 40 + "true"},
    {"$filter": " or ".join(["id eq 'x'"] * 500)},
])
def test_unsupported_or_bad_options_are_refused_with_400_and_a_message(sta, query):
    response = _get(f"{sta}/Things", **query)
    if "$filter" in query and "result" in query["$filter"]:
        response = _get(f"{sta}/Observations", **query)
    if "location" in query.get("$filter", ""):
        response = _get(f"{sta}/Locations", **query)
    assert response.status_code == 400, response.text
    assert response.json()["message"]


def test_observations_of_a_datastream_the_caller_may_not_see_are_a_404_not_an_empty_page(sta, staff_token):
    for stream in (f"{HIDDEN}:speed_kmh", f"{HOME}:power_w", f"{SENSOR}:no_such_metric"):
        response = _get(f"{sta}/Datastreams('{stream}')/Observations")
        assert response.status_code == 404 and str(SECRET) not in response.text, (stream, response.text)
    staff = httpx.get(f"{sta}/Datastreams('{HIDDEN}:speed_kmh')/Observations",
                      headers={"Authorization": f"Bearer {staff_token}"}, timeout=30)
    assert [o["result"] for o in staff.json()["value"]] == [12.0]


def test_hourly_and_daily_datastreams_hold_the_series_routes_means(sta, database_url):
    from cityos.platform.db.series_rollups import recompute_touched, refresh_series_rollups

    zone = "Asia/Tokyo"  # the API's CITYOS_TIMEZONE (the default)
    with psycopg.connect(database_url, autocommit=True) as conn:
        refresh_series_rollups(conn, zone)  # what the maintenance pass does
        recompute_touched(conn, "telemetry.measurements", [(NOW - timedelta(days=3), NOW)], zone)  # planted late
    api = sta.removesuffix("/sta/v1.1")
    stream = _get(f"{sta}/Datastreams('{SENSOR}:soil_moisture:1h')").json()
    assert stream["properties"]["aggregation"] == "mean" and stream["properties"]["resultInterval"] == "PT1H"
    assert f"{SENSOR}:soil_moisture:1d" in _ids(_get(f"{sta}/Things('{SENSOR}')/Datastreams").json())
    for interval in ("1h", "1d"):
        observations = _get(f"{sta}/Datastreams('{SENSOR}:soil_moisture:{interval}')/Observations",
                            **{"$top": "1000"}).json()["value"]
        assert observations, interval
        spans = [o["phenomenonTime"].split("/") for o in observations]
        series = httpx.get(f"{api}/api/v1/sensors/{SENSOR}/series", timeout=30, params={
            "metric": "soil_moisture", "interval": interval, "agg": "avg", "start": spans[0][0],
            "end": spans[-1][1], "limit": 1000}).json()["items"]
        ours = [(datetime.fromisoformat(start), o["result"]) for (start, _), o in zip(spans, observations, strict=True)]
        assert ours == [(datetime.fromisoformat(item["time"]), item["value"]) for item in series], interval


def test_household_and_health_data_never_appear_to_anyone(sta, staff_token):
    for headers in ({}, {"Authorization": f"Bearer {staff_token}"}):
        for entity_set in ("Things", "Datastreams", "Observations", "Sensors", "ObservedProperties",
                           "FeaturesOfInterest", "Locations", "HistoricalLocations"):
            text = httpx.get(f"{sta}/{entity_set}", params={"$top": "10000"}, headers=headers, timeout=60).text
            assert HOME not in text and WEAR not in text and str(SECRET) not in text, entity_set
        assert httpx.get(f"{sta}/Things('{HOME}')", headers=headers).status_code == 404


def test_staff_with_the_scope_see_the_non_public_vehicle_and_are_audited(sta, staff_token, database_url):
    response = httpx.get(f"{sta}/Things('{HIDDEN}')", headers={"Authorization": f"Bearer {staff_token}"})
    assert response.status_code == 200
    with psycopg.connect(database_url) as conn:
        row = conn.execute("select actor, action from core.audit_log where resource like %s order by id desc limit 1",
                           (f"%{HIDDEN}%",)).fetchone()
    assert row == ("sta-staff", "GET /sta/v1.1/{entity_set}({entity_id})")


def test_a_token_without_the_scope_is_refused(sta, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        token = create_token(conn, "sta-other", ["publish"])
    assert httpx.get(f"{sta}/Things", headers={"Authorization": f"Bearer {token}"}).status_code == 403
    assert httpx.get(f"{sta}/Things", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_same_answer_as_the_platform_series_route(sta):
    api = sta.removesuffix("/sta/v1.1")
    start, end = NOW - timedelta(days=2), NOW - timedelta(days=1)
    series = httpx.get(f"{api}/api/v1/sensors/{PLOW}/series", params={
        "metric": "speed_kmh", "start": start.isoformat(), "end": end.isoformat(), "limit": 10000}).json()
    ours = _get(f"{sta}/Datastreams('{PLOW}:speed_kmh')/Observations", **{
        "$filter": f"phenomenonTime ge {start.isoformat().replace('+00:00', 'Z')} and "
                   f"phenomenonTime lt {end.isoformat().replace('+00:00', 'Z')}", "$top": "10000"}).json()
    theirs = [(row["time"], row["value"]) for row in series["items"]]
    assert [(datetime.fromisoformat(t), v) for t, v in theirs] == \
        [(datetime.fromisoformat(o["phenomenonTime"]), o["result"]) for o in ours["value"]]
    assert len(theirs) == 6 * 24


# -- the MQTT extension -------------------------------------------------------------------------------------

@pytest.fixture()
def sta_feed(database_url, test_broker, tmp_path):
    """Ingest workers (validating and committing readings) and the SensorThings feed in this process."""
    import threading

    from servers import Workers

    from cityos.sta.mqtt import StaFeed

    ingest = Workers(database_url, test_broker.url, tmp_path / "ingest", public_feed=False)
    ingest.start()
    feed = StaFeed(database_url, test_broker.url, "http://sta.example")
    thread = threading.Thread(target=feed.run, daemon=True)
    thread.start()
    assert feed.ready.wait(10)
    yield feed
    feed.stop()
    thread.join(5)
    ingest.stop()


@pytest.mark.windowed
def test_a_public_subscriber_gets_a_new_observation_within_a_second_and_never_a_rejected_one(
        sta_feed, register, test_broker):
    import json
    import threading
    import time

    from publisher import Publisher

    from cityos.ingest.broker_auth import PUBLIC_PASSWORD, PUBLIC_USER
    from cityos.platform.mqtt import BrokerAddress, new_client
    from cityos.sta.mqtt import observation_topic

    device = "sta-mq-soil-01"
    password = register(device, "env", kind="soil", public=True)
    arrived: list[tuple[float, dict]] = []
    subscribed = threading.Event()
    address = BrokerAddress.parse(f"mqtt://{PUBLIC_USER}:{PUBLIC_PASSWORD}@127.0.0.1:{test_broker.port}")
    listener = new_client(address, f"sta-dev-{time.monotonic_ns()}")
    topic = observation_topic(device, "soil_moisture")  # what an STA client subscribes to for one Datastream
    listener.on_connect = lambda c, *a: c.subscribe(topic, qos=0)
    listener.on_subscribe = lambda *a: subscribed.set()
    listener.on_message = lambda c, u, m: arrived.append((time.monotonic(), m.topic, json.loads(m.payload)))
    listener.connect(address.host, address.port)
    listener.loop_start()
    try:
        assert subscribed.wait(5)
        with Publisher(test_broker.device_url(device, password)) as sender:
            bad = json.dumps({"t": datetime.now(UTC).isoformat(), "soil_moisture": "wet"})  # bad_type: dead letter
            sender.publish(f"cityos/v1/env/{device}/readings", bad, key="bad")
            sender.wait_acked(1)
            time.sleep(1)
            sent = time.monotonic()
            good = json.dumps({"t": datetime.now(UTC).isoformat(), "soil_moisture": 23.5})
            sender.publish(f"cityos/v1/env/{device}/readings", good, key="good")
            deadline = time.monotonic() + 5
            while not [a for a in arrived if a[1] == observation_topic(device, "soil_moisture")] and \
                    time.monotonic() < deadline:
                time.sleep(0.02)
        mine = [a for a in arrived if a[1] == observation_topic(device, "soil_moisture")]
        assert [a[2]["result"] for a in mine] == [23.5]
        assert mine[0][0] - sent < 1.0
        assert mine[0][2]["@iot.selfLink"].startswith("http://sta.example/sta/v1.1/Observations(")
    finally:
        listener.loop_stop()
        listener.disconnect()


def test_the_public_account_may_read_the_sensorthings_tree_but_not_write_it(test_broker):
    from publisher import Publisher

    from cityos.ingest.broker_auth import PUBLIC_PASSWORD, PUBLIC_USER

    with Publisher(f"mqtt://{PUBLIC_USER}:{PUBLIC_PASSWORD}@127.0.0.1:{test_broker.port}") as developer:
        developer.publish("v1.1/Datastreams('x:y')/Observations", "forged", key="forged")
        developer.wait_acked(1)  # the broker's answer, acknowledged or denied: nothing else is waited for
    assert "forged" in developer.denied


# -- creating Observations ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def writer_device(database_url, test_broker):
    """A public soil sensor registered with an MQTT password (its HTTP Basic credentials here too)."""
    from cityos.ingest.devices import add_device

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from core.devices where device_id = 'sta-post-01'")
        conn.execute("delete from telemetry.measurements where device_id = 'sta-post-01'")
        new = add_device(conn, "sta-post-01", "env", kind="soil", public=True)
    yield "sta-post-01", new.mqtt_password
    with psycopg.connect(database_url, autocommit=True) as conn:
        for table in ("core.devices", "telemetry.measurements", "telemetry.latest_values"):
            conn.execute(f"delete from {table} where device_id = 'sta-post-01'")


def _stamp(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@pytest.mark.windowed
def test_frost_client_creates_an_observation_as_the_device(sta, writer_device):
    device, password = writer_device
    service = fsc.SensorThingsService(sta, auth_handler=fsc.AuthHandler(username=device, password=password))
    stream = fsc.Datastream(id=f"{device}:soil_moisture")
    observation = fsc.Observation(result=41.5, phenomenon_time=_stamp(3), datastream=stream)
    service.create(observation)
    assert observation.id.startswith(f"{device}:soil_moisture:")
    read = _get(f"{sta}/Observations('{observation.id}')").json()
    assert read["result"] == 41.5


@pytest.mark.windowed
def test_data_array_writes_many_and_reports_each(sta, writer_device):
    device, password = writer_device
    body = [{"Datastream": {"@iot.id": f"{device}:soil_moisture"}, "components": ["phenomenonTime", "result"],
             "dataArray@iot.count": 3, "dataArray": [[_stamp(10), 1.0], [_stamp(9), 2.0], [_stamp(8), 3.0]]}]
    response = httpx.post(f"{sta}/CreateObservations", json=body, auth=(device, password))
    assert response.status_code == 201
    assert len(response.json()) == 3 and all("Observations('" in link for link in response.json())


@pytest.mark.windowed
def test_an_invalid_observation_is_dead_lettered_like_an_mqtt_reading(sta, writer_device, database_url):
    device, password = writer_device
    response = httpx.post(f"{sta}/Observations", auth=(device, password), json={
        "phenomenonTime": _stamp(1), "result": "very wet", "Datastream": {"@iot.id": f"{device}:soil_moisture"}})
    assert response.status_code == 400 and "bad_type" in response.json()["message"]
    with psycopg.connect(database_url) as conn:
        row = conn.execute("select reason, topic from core.dead_letters where device_id = %s order by id desc limit 1",
                           (device,)).fetchone()
    assert row == ("bad_type", f"cityos/v1/env/{device}/readings")


def test_a_device_cannot_write_another_devices_datastream_or_a_household_meter(sta, writer_device):
    device, password = writer_device
    for target in (f"{SENSOR}:soil_moisture", f"{HOME}:power_w"):
        response = httpx.post(f"{sta}/Observations", auth=(device, password), json={
            "phenomenonTime": _stamp(1), "result": 1, "Datastream": {"@iot.id": target}})
        assert response.status_code in (403, 404)
    assert httpx.post(f"{sta}/Observations", auth=(device, "wrong"), json={}).status_code == 401


def test_an_aggregated_datastream_is_not_written_to(sta, writer_device):
    device, password = writer_device
    response = httpx.post(f"{sta}/Observations", auth=(device, password), json={
        "phenomenonTime": _stamp(1), "result": 1, "Datastream": {"@iot.id": f"{device}:soil_moisture:1h"}})
    assert response.status_code == 400 and "aggregated" in response.json()["message"]


# -- hostile filters against the running service -------------------------------------------------------------

def _hostile_filters():
    from hypothesis import strategies as st

    atoms = st.sampled_from(["result", "id", "name", "phenomenonTime", "location", "Datastream/id", "Thing/name",
                             "properties/kind", "1", "-1e308", "1e308", "0", "'x'", "'''; drop table x; --'",
                             "2026-01-01T00:00:00Z", "null", "true", "geography'POINT(1 2)'", "now()"])
    ops = st.sampled_from([" eq ", " ne ", " gt ", " lt ", " add ", " mul ", " div ", " mod ", " and ", " or "])
    funcs = st.sampled_from(["not ", "year(", "length(", "tolower(", "geo.distance(location, ", "round(",
                             "substring(name, ", "st_within(location, ", "("])
    part = st.one_of(atoms, st.tuples(funcs, atoms).map(lambda t: t[0] + t[1] + (")" if t[0][-1] == "(" or
                                                                                  t[0].endswith(", ") else "")))
    return st.lists(st.tuples(part, ops), min_size=1, max_size=6).map(
        lambda items: "".join(a + o for a, o in items)[:-4] if items else "")


def test_hostile_filters_get_an_answer_or_a_400_never_a_500(sta):
    from hypothesis import HealthCheck, example, given, settings

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_hostile_filters())
    @example("result mod result eq result")  # found by hypothesis: PostgreSQL has no % for double precision
    @example("result mod 0 eq 1")  # division by zero: a 400
    def check(text):
        for entity_set in ("Observations", "Locations", "Things"):
            response = _get(f"{sta}/{entity_set}", **{"$filter": text, "$top": "5"})
            assert response.status_code in (200, 400), (entity_set, text, response.text[:300])

    check()


def test_mod_filters_observations_by_their_remainder(sta):
    values = [o["result"] for o in _get(f"{sta}/Observations", **{"$filter": "result mod 7 eq 3", "$top": "50"})
              .json()["value"]]
    assert values and all(isinstance(v, int | float) and v % 7 == 3 for v in values)


def test_same_devices_and_latest_positions_as_the_platform_sensors_route(sta):
    api = sta.removesuffix("/sta/v1.1")
    sensors = {s["device_id"]: s for s in httpx.get(f"{api}/api/v1/sensors", params={"limit": 10000}).json()["items"]
               if s["device_id"].startswith("sta-")}
    things = _get(f"{sta}/Things", **{"$filter": "startswith(id, 'sta-')", "$expand": "Locations", "$top": "1000"})
    things = {t["@iot.id"]: t for t in things.json()["value"]}
    assert set(things) == set(sensors)
    for device, sensor in sensors.items():
        locations = things[device]["Locations"]
        if sensor["lon"] is None:
            assert locations == []
        else:
            assert locations[0]["location"]["coordinates"] == pytest.approx([sensor["lon"], sensor["lat"]])
