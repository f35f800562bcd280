"""The permission matrix: every route of the API with who may call it, checked against the running service.

A new route fails ``test_every_route_is_in_the_matrix`` until it is added here with its access rule.
Anonymous routes are also checked for personal data: a resident, a wearable and a household meter
with unmistakable values are planted, and no anonymous response may contain them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from cityos.gis.declarations import analyses
from cityos.platform.api.app import create_app
from cityos.platform.auth import create_token
from helpers import wait_for

PUBLIC = "public"
#: Any token or API key: the caller's own resources (NGSI-LD subscriptions belong to who made them).
OWNER = "owner"
#: (method, path) -> PUBLIC or the scope a bearer token needs ("household:" = any household token).
MATRIX: dict[tuple[str, str], str] = {
    # declared analyses (gis/analyses/declared/): public unless named below with their scope (a staff analysis
    # that lost its scope fails here instead of being trusted)
    **{("GET", a.path): PUBLIC for a in analyses().values() if a.api},
    ("GET", "/healthz"): PUBLIC, ("GET", "/readyz"): PUBLIC, ("GET", "/metrics"): PUBLIC,
    ("POST", "/api/v1/consents"): "consent:write", ("GET", "/api/v1/consents/{subject_id}"): "consent:write",
    ("POST", "/api/v1/keys"): PUBLIC,
    ("GET", "/api/v1/sensors"): PUBLIC, ("GET", "/api/v1/sensors/latest"): PUBLIC,
    ("GET", "/api/v1/sensors/{device_id}/series"): PUBLIC,
    ("POST", "/api/v1/devices"): "devices:write", ("GET", "/api/v1/devices"): "devices:read",
    ("POST", "/api/v1/devices/{device_id}/revoke"): "devices:write",
    ("POST", "/api/v1/devices/{device_id}/enrolment-token"): "devices:write",
    ("POST", "/api/v1/devices/enroll"): PUBLIC,  # the one-time token in the body is the credential
    ("GET", "/api/v1/deadletters"): "deadletters:read", ("POST", "/api/v1/deadletters/replay"): "deadletters:write",
    ("GET", "/ogc"): PUBLIC, ("GET", "/ogc/conformance"): PUBLIC, ("GET", "/ogc/collections"): PUBLIC,
    ("GET", "/ogc/collections/{collection_id}"): PUBLIC, ("GET", "/ogc/collections/{collection_id}/items"): PUBLIC,
    ("GET", "/ogc/collections/{collection_id}/items/{feature_id}"): PUBLIC,
    ("GET", "/ogc/collections/{collection_id}/queryables"): PUBLIC,
    ("GET", "/ogc/tiles/{collection_id}/{z}/{x}/{y}.pbf"): PUBLIC,
    ("GET", "/api/v1/gis/population"): PUBLIC, ("GET", "/api/v1/gis/bus-coverage"): PUBLIC,
    ("GET", "/api/v1/gis/hotspots"): PUBLIC, ("GET", "/api/v1/gis/registry/residents"): "registry:read",
    ("GET", "/api/v1/gis/registry/population"): "registry:read",
    ("GET", "/api/v1/gis/registry/bus-coverage"): "registry:read",
    ("GET", "/api/v1/gis/exports/{layer}"): PUBLIC, ("GET", "/api/v1/gis/snowplow-coverage"): PUBLIC,
    ("GET", "/api/v1/gis/energy-by-district"): PUBLIC, ("GET", "/api/v1/gis/energy-by-area"): PUBLIC,
    ("GET", "/api/v1/gis/vacant-houses"): "registry:read",
    ("GET", "/api/v1/energy/my"): "household:",
    ("POST", "/api/v1/hydrants/{hydrant_id}/reports"): PUBLIC,
    ("GET", "/api/v1/hydrants/reports"): "hydrants:moderate",
    ("POST", "/api/v1/hydrants/reports/{report_id}/moderation"): "hydrants:moderate",
    ("GET", "/api/v1/hydrants/status"): PUBLIC,
    ("POST", "/api/v1/dataset-requests"): PUBLIC, ("GET", "/api/v1/dataset-requests"): PUBLIC,
    ("GET", "/api/v1/dataset-requests/inbox"): "requests:manage",
    ("GET", "/api/v1/dataset-requests/{request_id}"): PUBLIC,
    ("POST", "/api/v1/dataset-requests/{request_id}/answer"): "requests:manage",
    ("GET", "/api/v1/live/snowplows"): PUBLIC, ("GET", "/api/v1/live/energy"): PUBLIC,
    # NGSI-LD: public devices for anyone (telemetry:read sees every device), subscriptions per token or key
    **{("GET", f"/ngsi-ld/v1{path}"): PUBLIC for path in (
        "/entities", "/entities/{entityId}", "/types", "/types/{type_name}", "/attributes", "/attributes/{attr}",
        "/temporal/entities", "/temporal/entities/{entityId}", "/jsonldContexts/{name}")},
    ("POST", "/ngsi-ld/v1/entityOperations/query"): PUBLIC,
    ("GET", "/ngsi-ld/v1/subscriptions"): OWNER, ("POST", "/ngsi-ld/v1/subscriptions"): OWNER,
    ("GET", "/ngsi-ld/v1/subscriptions/{subscriptionId}"): OWNER,
    ("PATCH", "/ngsi-ld/v1/subscriptions/{subscriptionId}"): OWNER,
    ("DELETE", "/ngsi-ld/v1/subscriptions/{subscriptionId}"): OWNER,
    ("GET", "/api/v1/devices/fleet"): "devices:read", ("GET", "/api/v1/devices/gaps"): "devices:read",
    ("GET", "/api/v1/devices/{device_id}/stats"): "devices:read",
    ("POST", "/ngsi-ld/v1/entityOperations/upsert"): "telemetry:write",
    ("PATCH", "/ngsi-ld/v1/entities/{entityId}/attrs"): "telemetry:write",
    ("POST", "/ngsi-ld/v1/entities/{entityId}/attrs"): "telemetry:write",
    # SensorThings: anonymous reads public devices; a token with sta:read sees more (tests/integration/test_sta.py)
    ("GET", "/sta/v1.1"): PUBLIC, ("GET", "/sta/v1.1/{entity_set}"): PUBLIC,
    ("GET", "/sta/v1.1/{entity_set}({entity_id})"): PUBLIC,
    ("GET", "/sta/v1.1/{entity_set}({entity_id})/{navigation}"): PUBLIC,
    ("POST", "/sta/v1.1/Observations"): "sta:write", ("POST", "/sta/v1.1/CreateObservations"): "sta:write",
}
#: Streams: checked by their own tests (they never end); here only their place in the matrix.
STREAMS = {"/api/v1/live/snowplows", "/api/v1/live/energy"}
SAMPLES = {"subject_id": "perm-subject", "device_id": "perm-wear-01", "collection_id": "fire_water",
           "feature_id": "X1", "z": "14", "x": "14550", "y": "6380", "layer": "districts", "hydrant_id": "X1",
           "report_id": "1", "request_id": "1", "entityId": "urn:ngsi-ld:Device:perm-home-01", "type_name": "Device",
           "attr": "power_w", "name": "ngsi-ld-core-context-v1.8.jsonld",
           "subscriptionId": "urn:ngsi-ld:Subscription:perm",
           # the wearable as a SensorThings Thing: must be as unknown as any id
           "entity_set": "Things", "entity_id": "'perm-wear-01'", "navigation": "Datastreams"}
#: Every SensorThings entity set, read anonymously in the consent probe too.
STA_SETS = ("Things", "Sensors", "Locations", "HistoricalLocations", "Datastreams", "ObservedProperties",
            "Observations", "FeaturesOfInterest")
SECRETS = ("PERMSECRET-PERSON", "perm-secret-subject", "424242.4242", "perm-wear-01", "perm-home-01")
API_ENV = {"CITYOS_ANONYMOUS_RATE_PER_MINUTE": "10000"}


def _route_set() -> set[tuple[str, str]]:
    from cityos.platform.settings import load_settings

    spec = create_app(load_settings(), maintenance=False).openapi()
    return {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}


def _url(base: str, path: str) -> str:
    return base + path.format(**SAMPLES)


@pytest.fixture(scope="module")
def personal_data(database_url) -> None:
    """A resident, a wearable and a household meter carrying the SECRETS."""
    now = datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("insert into registry.residents (person_id, household_id, district_code, birth_date, sex) "
                     "values ('PERMSECRET-PERSON', 'PERMSECRET-HH', '07202-001', '1950-01-01', 'F') "
                     "on conflict do nothing")
        for device, domain in (("perm-wear-01", "health"), ("perm-home-01", "hems")):
            conn.execute("insert into core.devices (device_id, domain, owner_subject, district_code) values "
                         "(%s, %s, 'perm-secret-subject', '07202-001') on conflict do nothing", (device, domain))
            table, metric = (("health_readings", "heart_rate_bpm") if domain == "health"
                             else ("energy_readings", "power_w"))
            conn.execute(f"insert into telemetry.{table} (time, device_id, metric, value) values "
                         f"(%s, %s, %s, 424242.4242) on conflict do nothing", (now, device, metric))
            conn.execute("insert into telemetry.latest_values (device_id, metric, time, value) values "
                         "(%s, %s, %s, 424242.4242) on conflict do nothing", (device, metric, now))


@pytest.fixture(scope="module")
def api(personal_data, api):  # the shared API (tests/conftest.py), started once the personal data is planted
    return api


@pytest.fixture(scope="module")
def tokens(database_url) -> dict[str, str]:
    scopes = {scope for scope in MATRIX.values() if scope not in (PUBLIC, OWNER)} | {"unrelated"}
    with psycopg.connect(database_url, autocommit=True) as conn:
        made = {}
        for scope in scopes:
            real = "household:perm-home-01" if scope == "household:" else scope
            made[scope] = create_token(conn, f"perm-{scope}", [] if scope == "unrelated" else [real])
        return made


def _call(method: str, url: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, url, headers=headers, json={} if method == "POST" else None, timeout=60)


def test_every_route_is_in_the_matrix():
    routes = _route_set()
    assert routes - set(MATRIX) == set(), "new routes: add them to MATRIX with their access rule"
    assert set(MATRIX) - routes == set(), "MATRIX names routes that no longer exist"


@pytest.mark.parametrize(("method", "path"), sorted(k for k, v in MATRIX.items() if v == OWNER))
def test_an_owners_route_refuses_anonymous_callers_and_admits_any_token(api, tokens, method, path):
    url = _url(api, path)
    assert _call(method, url).status_code == 401
    assert _call(method, url, tokens["unrelated"]).status_code not in (401, 403)


@pytest.mark.parametrize(("method", "path"), sorted(k for k, v in MATRIX.items() if v not in (PUBLIC, OWNER)))
def test_a_protected_route_refuses_anonymous_and_wrong_scopes_and_admits_its_scope(api, tokens, method, path):
    scope = MATRIX[(method, path)]
    url = _url(api, path)
    assert _call(method, url).status_code == 401
    assert _call(method, url, tokens["unrelated"]).status_code == 403
    assert _call(method, url, tokens[scope]).status_code not in (401, 403)


ANONYMOUS = sorted(k for k, v in MATRIX.items() if v == PUBLIC and k[1] not in STREAMS)


@pytest.mark.parametrize(("method", "path"), ANONYMOUS)
def test_an_anonymous_route_answers_without_personal_data(api, method, path):
    response = _call(method, _url(api, path))
    assert response.status_code not in (401, 403, 500)
    body = response.text
    assert not [s for s in SECRETS if s in body], f"{method} {path} leaks personal data"


@pytest.mark.parametrize("entity_set", STA_SETS)
def test_every_sensorthings_set_answers_anonymously_without_personal_data(api, entity_set):
    for url in (f"{api}/sta/v1.1/{entity_set}?$top=10000&$expand=" + ("Datastreams" if entity_set == "Things" else ""),
                f"{api}/sta/v1.1/{entity_set}('perm-home-01')", f"{api}/sta/v1.1/{entity_set}('perm-wear-01')"):
        response = _call("GET", url.removesuffix("&$expand="))
        assert response.status_code in (200, 404), url
        assert not [s for s in SECRETS if s in response.text], f"{url} leaks personal data"


# -- consent purposes: a home without open-data consent never moves an anonymous answer -------------------
#
# Ten homes in one district consent to everything except energy/open_data (energy for research and
# services, every other category for every purpose); ten homes in another district consent to energy
# open data only. Every anonymous answer is taken with only the open-data homes planted, then again with
# the others planted too: nothing may change (the energy route counted research and services consents).
# The open-data homes must show (else the exits would be trivially blind).
NO_OPEN, OPEN = "07202-990", "07202-991"
NO_OPEN_W, OPEN_W = 7313.7, 6151.3
#: Anonymous GETs whose answer changes from call to call whatever the data (counters, fresh keys).
VOLATILE = {"/metrics", "/readyz", "/healthz"}
#: Tiles and items of every collection around the planted districts.
TILE = {"z": "12", "x": "3638", "y": "1596"}


def _plant_homes(conn, district: str, watts: float, consents: list[tuple[str, str]], prefix: str) -> None:
    from zoneinfo import ZoneInfo

    now = datetime.now(UTC).replace(microsecond=0)
    midnight = datetime.now(ZoneInfo("Asia/Tokyo")).replace(hour=0, minute=0, second=0, microsecond=0)
    for i in range(10):
        device, subject = f"{prefix}-{i:02d}", f"{prefix}-subject-{i:02d}"
        conn.execute("insert into core.devices (device_id, domain, owner_subject, district_code) values "
                     "(%s, 'hems', %s, %s) on conflict do nothing", (device, subject, district))
        for category, purpose in consents:
            conn.execute("insert into core.consent_events (subject_id, category, purpose, action, actor) "
                         "values (%s, %s, %s, 'grant', 'test')", (subject, category, purpose))
        for hours in (1, 2, 3):
            conn.execute("insert into telemetry.energy_readings (time, device_id, metric, value) values "
                         "(%s, %s, 'power_w', %s)", (now - timedelta(hours=hours), device, watts))
        for hours, kwh in ((20, 1000.0), (2, 1000.0 + watts / 100)):  # yesterday (local day): watts/100 kWh
            conn.execute("insert into telemetry.energy_readings (time, device_id, metric, value) values "
                         "(%s, %s, 'import_kwh', %s)", (midnight - timedelta(hours=hours), device, kwh))
        conn.execute("insert into telemetry.latest_values (device_id, metric, time, value) values "
                     "(%s, 'power_w', %s, %s) on conflict (device_id, metric) do update set time = excluded.time, "
                     "value = excluded.value", (device, now - timedelta(minutes=1), watts))


def _plant_districts(conn) -> None:
    """Both districts exist from the start: the layer of districts is not what is being probed."""
    for district, lon in ((NO_OPEN, 139.80), (OPEN, 139.82)):
        conn.execute("insert into gis.districts (code, name_ja, geom) values (%s, %s, st_multi(st_makeenvelope("
                     "%s, 37.40, %s, 37.41, 4326))) on conflict do nothing", (district, district, lon, lon + 0.01))


def _anonymous_answers(api: str, database_url: str, live: list[dict]) -> dict[str, object]:
    """Every anonymous answer that could carry household data: each anonymous GET route, every export as
    GeoJSON, every collection's items and tile, the live energy feed, the public MQTT aggregate, every
    dataset's files."""
    from cityos.gis.collections import COLLECTIONS
    from cityos.gis.exports import EXPORTS
    from cityos.opendata.definitions import load_definitions
    from cityos.opendata.run import build_all
    from cityos.platform.settings import load_settings

    answers: dict[str, object] = {}
    for method, path in ANONYMOUS:
        if method == "GET" and path not in VOLATILE and "{" not in path:
            answers[f"GET {path}"] = _call("GET", _url(api, path)).text
    for entity_set in STA_SETS:
        answers[f"sta {entity_set}"] = _call("GET", f"{api}/sta/v1.1/{entity_set}?$top=10000").text
    for layer in EXPORTS:
        answers[f"export {layer}"] = httpx.get(f"{api}/api/v1/gis/exports/{layer}?format=geojson", timeout=60).content
    for collection in COLLECTIONS:
        items = httpx.get(f"{api}/ogc/collections/{collection}/items?limit=10000", timeout=60).json()
        answers[f"items {collection}"] = {k: v for k, v in items.items() if k != "timeStamp"}
        answers[f"tile {collection}"] = httpx.get(
            f"{api}/ogc/tiles/{collection}/{TILE['z']}/{TILE['x']}/{TILE['y']}.pbf", timeout=60).content
    with httpx.stream("GET", f"{api}/api/v1/live/energy?interval_s=1", timeout=10) as response:
        answers["live energy"] = json.loads(next(line for line in response.iter_lines()
                                                 if line.startswith("data:"))[5:])
    seen = len(live)
    wait_for(lambda: len(live) > seen + 1, 10)  # a message computed after this point
    answers["mqtt energy"] = live[-1]
    with psycopg.connect(database_url, autocommit=True) as conn:
        settings = load_settings(database_url=database_url)
        for built in build_all(conn, load_definitions(), settings):
            answers[f"dataset {built.definition.name}"] = [r.data for r in built.resources]
    return answers


def _delayed_vehicles_moving(database_url: str) -> list[str]:
    """Public vehicles shown late whose shown position will change within the probe (positions < 16 min old)."""
    from cityos.platform.vehicle_privacy import REALTIME_KINDS

    with psycopg.connect(database_url, autocommit=True) as conn:
        return [r[0] for r in conn.execute(
            "select distinct v.device_id from telemetry.vehicle_positions v join core.devices d using (device_id) "
            "where d.public and d.domain = 'vehicle' and d.kind <> all(%s) and v.time > now() - interval '16 minutes'",
            (list(REALTIME_KINDS),))]


@pytest.fixture(scope="module")
def consent_probe(api, database_url, test_broker):
    """(answers with only the open-data homes, answers with the other homes too)."""
    import threading

    from cityos.ingest.broker_auth import PUBLIC_PASSWORD, PUBLIC_USER
    from cityos.ingest.public_feed import PublicFeed
    from cityos.platform.consent import CATEGORIES, PURPOSES
    from cityos.platform.mqtt import BrokerAddress, new_client

    everything_but_open_energy = [(c, p) for c in CATEGORIES for p in PURPOSES if (c, p) != ("energy", "open_data")]
    with psycopg.connect(database_url, autocommit=True) as conn:
        _plant_districts(conn)
        _plant_homes(conn, OPEN, OPEN_W, [("energy", "open_data")], "perm-open")
    feed = PublicFeed(database_url, test_broker.url, k=10, energy_interval_s=0.3)
    thread = threading.Thread(target=feed.run, daemon=True)
    thread.start()
    live: list[dict] = []
    address = BrokerAddress.parse(f"mqtt://{PUBLIC_USER}:{PUBLIC_PASSWORD}@127.0.0.1:{test_broker.port}")
    listener = new_client(address, "perm-consent-listener")
    listener.on_connect = lambda c, *a: c.subscribe("cityos/public/v1/energy/districts", qos=0)
    listener.on_message = lambda c, u, m: live.append(json.loads(m.payload))
    listener.connect(address.host, address.port)
    listener.loop_start()
    try:
        moving = _delayed_vehicles_moving(database_url)
        assert not moving, f"another module left public delayed vehicles with recent positions: {moving} (their " \
            "shown positions move as the 15-minute delay passes, whatever this probe does)"
        before = _anonymous_answers(api, database_url, live)
        with psycopg.connect(database_url, autocommit=True) as conn:
            _plant_homes(conn, NO_OPEN, NO_OPEN_W, everything_but_open_energy, "perm-noopen")
        after = _anonymous_answers(api, database_url, live)
    finally:
        listener.loop_stop()
        listener.disconnect()
        feed.stop()
        thread.join(5)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("delete from core.devices where device_id like 'perm-%open-%'")
            conn.execute("delete from telemetry.latest_values where device_id like 'perm-%open-%'")
            conn.execute("delete from telemetry.energy_readings where device_id like 'perm-%open-%'")
            conn.execute("delete from gis.districts where code in (%s, %s)", (NO_OPEN, OPEN))
    return before, after


def test_open_data_homes_show_in_every_public_energy_exit(consent_probe):
    before, _ = consent_probe
    rows = json.loads(before["GET /api/v1/gis/energy-by-district"])["items"]
    assert {r["homes"] for r in rows if r["district_code"] == OPEN} == {10}
    assert str(OPEN_W) in before["GET /api/v1/gis/energy-by-district"]
    assert str(OPEN_W).encode() in before["export energy_by_district"]
    for live in (before["live energy"], before["mqtt energy"]):
        assert {"district_code": OPEN, "homes": 10, "avg_power_w": OPEN_W} in live["districts"]
    assert f"{OPEN},".encode() in before["dataset energy-by-district-day"][0]
    assert f"{OPEN_W / 100:.2f}".encode() in before["dataset energy-by-district-day"][0]


@pytest.mark.parametrize("answer", [
    "GET /api/v1/gis/energy-by-district", "export energy_by_district", "live energy", "mqtt energy",
    "dataset energy-by-district-day", "every other anonymous answer"])
def test_a_home_with_every_consent_but_open_data_never_moves_an_anonymous_answer(consent_probe, answer):
    before, after = consent_probe
    names = [answer] if answer != "every other anonymous answer" else sorted(before)
    changed = [name for name in names if before[name] != after[name]]
    assert changed == [], f"homes without open-data consent changed {changed}"
    assert all(str(NO_OPEN_W) not in str(after[name]) for name in names)
