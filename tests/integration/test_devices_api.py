"""Device registry, enrolment and dead letters through the HTTP API, with scoped tokens."""

from __future__ import annotations

import httpx
import psycopg

from cityos.platform.auth import create_token


def API_ENV(test_broker) -> dict[str, str]:
    """The shared API (tests/conftest.py) manages the test broker's accounts: its files."""
    return {"CITYOS_BROKER_AUTH_DIR": str(test_broker.broker.folder),
            "CITYOS_BROKER_PIDFILE": str(test_broker.broker.pidfile)}


def _token(database_url: str, *scopes: str) -> dict[str, str]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return {"Authorization": f"Bearer {create_token(conn, 'test-' + '-'.join(scopes), list(scopes))}"}


def test_registering_a_device_needs_a_token(api):
    resp = httpx.post(f"{api}/api/v1/devices", json={"device_id": "hems-api0", "domain": "hems"})
    assert resp.status_code == 401


def test_registering_a_device_needs_the_write_scope(api, database_url):
    resp = httpx.post(f"{api}/api/v1/devices", json={"device_id": "hems-api0", "domain": "hems"},
                      headers=_token(database_url, "devices:read"))
    assert resp.status_code == 403


def test_registered_device_can_connect_with_the_returned_credentials(api, database_url, test_broker):
    from publisher import Publisher

    resp = httpx.post(f"{api}/api/v1/devices", json={"device_id": "hems-api1", "domain": "hems"},
                      headers=_token(database_url, "devices:write"))
    assert resp.status_code == 201, resp.text
    creds = resp.json()
    assert creds["topic_prefix"] == "cityos/v1/hems/hems-api1/"
    with Publisher(test_broker.device_url(creds["mqtt_username"], creds["mqtt_password"])):
        pass


def test_device_list_never_shows_password_hashes(api, database_url):
    resp = httpx.get(f"{api}/api/v1/devices", headers=_token(database_url, "devices:read"))
    assert resp.status_code == 200
    assert resp.json() and all("mqtt_password_hash" not in d for d in resp.json())


def test_enrolment_token_works_exactly_once(api, database_url):
    headers = _token(database_url, "devices:write")
    httpx.post(f"{api}/api/v1/devices", json={"device_id": "gw-api2", "domain": "env"}, headers=headers)
    token = httpx.post(f"{api}/api/v1/devices/gw-api2/enrolment-token", headers=headers).json()["enrolment_token"]
    first = httpx.post(f"{api}/api/v1/devices/enroll", json={"token": token})
    second = httpx.post(f"{api}/api/v1/devices/enroll", json={"token": token})
    assert first.status_code == 200 and first.json()["mqtt_username"] == "gw-api2"
    assert second.status_code == 403


def test_every_authorised_call_is_audited(api, database_url):
    httpx.get(f"{api}/api/v1/devices", headers=_token(database_url, "devices:read"))
    with psycopg.connect(database_url) as conn:
        row = conn.execute("select actor, entry_point, action, resource, subject, reason from core.audit_log "
                           "where resource = '/api/v1/devices' order by id desc limit 1").fetchone()
    assert row == ("test-devices:read", "api", "GET /api/v1/devices", "/api/v1/devices", "all devices", "list devices")


def test_dead_letters_are_listed_for_operators(api, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("insert into core.dead_letters (topic, reason, payload, device_id) "
                     "values ('cityos/v1/hems/x/readings', 'bad_json', 'oops', 'x')")
    resp = httpx.get(f"{api}/api/v1/deadletters", params={"reason": "bad_json"},
                     headers=_token(database_url, "deadletters:read"))
    assert resp.status_code == 200
    assert any(d["payload"] == "oops" for d in resp.json())


def test_metrics_are_exposed_for_prometheus(api):
    resp = httpx.get(f"{api}/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
