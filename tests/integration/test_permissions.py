"""The permission matrix: every route of the API with who may call it, checked against the running service.

A new route fails ``test_every_route_is_in_the_matrix`` until it is added here with its access rule.
Anonymous routes are also checked for personal data: a resident, a wearable and a household meter
with unmistakable values are planted, and no anonymous response may contain them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import psycopg
import pytest

from cityos.platform.api.app import create_app
from cityos.platform.auth import create_token
from helpers import api_server

PUBLIC = "public"
#: (method, path) -> PUBLIC or the scope a bearer token needs ("household:" = any household token).
MATRIX: dict[tuple[str, str], str] = {
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
}
#: Streams: checked by their own tests (they never end); here only their place in the matrix.
STREAMS = {"/api/v1/live/snowplows", "/api/v1/live/energy"}
SAMPLES = {"subject_id": "perm-subject", "device_id": "perm-wear-01", "collection_id": "fire_water",
           "feature_id": "X1", "z": "14", "x": "14550", "y": "6380", "layer": "districts", "hydrant_id": "X1",
           "report_id": "1", "request_id": "1"}
SECRETS = ("PERMSECRET-PERSON", "perm-secret-subject", "424242.4242", "perm-wear-01", "perm-home-01")


def _route_set() -> set[tuple[str, str]]:
    from cityos.platform.settings import load_settings

    spec = create_app(load_settings(), maintenance=False).openapi()
    return {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}


def _url(base: str, path: str) -> str:
    return base + path.format(**SAMPLES)


@pytest.fixture(scope="module")
def api(database_url, test_broker, tmp_path_factory):
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
    env = {"CITYOS_DATABASE_URL": database_url, "CITYOS_MQTT_URL": test_broker.url,
           "CITYOS_HOME": str(tmp_path_factory.mktemp("perm")), "CITYOS_ANONYMOUS_RATE_PER_MINUTE": "10000"}
    with api_server(env) as base:
        yield base


@pytest.fixture(scope="module")
def tokens(database_url) -> dict[str, str]:
    scopes = {scope for scope in MATRIX.values() if scope != PUBLIC} | {"unrelated"}
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


@pytest.mark.parametrize(("method", "path"), sorted(k for k, v in MATRIX.items() if v != PUBLIC))
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
