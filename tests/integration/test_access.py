"""Rate limits and API keys on the open API (a real API process)."""

from __future__ import annotations

import httpx
import pytest

from helpers import api_server


@pytest.fixture(scope="module")
def api(database_url, test_broker, tmp_path_factory):
    env = {"CITYOS_DATABASE_URL": database_url, "CITYOS_MQTT_URL": test_broker.url,
           "CITYOS_HOME": str(tmp_path_factory.mktemp("access")), "CITYOS_ANONYMOUS_RATE_PER_MINUTE": "5"}
    with api_server(env) as base:
        yield base


def test_anonymous_caller_over_the_rate_gets_429_with_retry_after(api):
    statuses = [httpx.get(f"{api}/api/v1/sensors").status_code for _ in range(7)]
    assert statuses[:5] == [200] * 5
    last = httpx.get(f"{api}/api/v1/sensors")
    assert last.status_code == 429
    assert 1 <= int(last.headers["retry-after"]) <= 61


def test_api_key_has_its_own_higher_rate(api):
    key = httpx.post(f"{api}/api/v1/keys", json={"name": "snow app", "contact": "dev@example.org"}).json()["api_key"]
    statuses = {httpx.get(f"{api}/api/v1/sensors", headers={"X-API-Key": key}).status_code for _ in range(12)}
    assert statuses == {200}


def test_unknown_api_key_is_refused(api):
    assert httpx.get(f"{api}/api/v1/sensors", headers={"X-API-Key": "ck_nope"}).status_code == 401


def test_keys_are_stored_hashed(api, db):
    key = httpx.post(f"{api}/api/v1/keys", json={"name": "another", "contact": "b@example.org"}).json()["api_key"]
    stored = db.execute("select key_hash, key_prefix from core.api_keys where name = 'another'").fetchone()
    assert key not in stored[0] and stored[1] == key[:8]


def test_health_probes_are_not_rate_limited(api):
    assert {httpx.get(f"{api}/healthz").status_code for _ in range(10)} == {200}
