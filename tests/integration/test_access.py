"""Rate limits and API keys on the open API (a real API process)."""

from __future__ import annotations

import contextlib

import httpx
import pytest

from helpers import api_server, wait_for

#: settings of the shared ``api`` fixture (tests/conftest.py)
API_ENV = {"CITYOS_ANONYMOUS_RATE_PER_MINUTE": "5"}


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


@pytest.fixture()
def own_api(database_url, test_broker, tmp_path):
    """An API process of the test's own (fresh counters), with ``settings`` as CITYOS_* variables."""
    servers = contextlib.ExitStack()

    def start(**settings: str) -> str:
        env = {"CITYOS_DATABASE_URL": database_url, "CITYOS_MQTT_URL": test_broker.url,
               "CITYOS_HOME": str(tmp_path), **{f"CITYOS_{k.upper()}": v for k, v in settings.items()}}
        return servers.enter_context(api_server(env))

    with servers:
        yield start


def test_an_address_mints_at_most_ten_keys_a_day(own_api):
    api = own_api()
    statuses = [httpx.post(f"{api}/api/v1/keys", json={"name": f"burst {i}", "contact": "m@example.org"}).status_code
                for i in range(11)]
    assert statuses == [201] * 10 + [429]


def test_a_forged_forwarded_for_from_a_client_does_not_change_the_counted_address(own_api):
    api = own_api(anonymous_rate_per_minute="5")
    statuses = [httpx.get(f"{api}/api/v1/sensors", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
                for i in range(6)]
    assert statuses == [200] * 5 + [429]


def test_a_configured_proxy_is_believed(own_api):
    api = own_api(anonymous_rate_per_minute="5", trusted_proxies="127.0.0.1")
    statuses = [httpx.get(f"{api}/api/v1/sensors", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
                for i in range(6)]
    assert statuses == [200] * 6


def _open_stream(stack: contextlib.ExitStack, url: str, **headers: str) -> httpx.Response:
    return stack.enter_context(httpx.stream("GET", url, headers=headers, timeout=10))


def test_one_address_over_its_live_connections_is_refused_by_sse_and_websocket(own_api):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    api = own_api(live_max_per_address="2")
    feed = f"{api}/api/v1/live/energy?interval_s=60"
    with contextlib.ExitStack() as streams:
        assert [_open_stream(streams, feed).status_code for _ in range(2)] == [200, 200]
        refused = httpx.get(feed, timeout=10)
        assert refused.status_code == 429 and "per address" in refused.json()["detail"]
        assert int(refused.headers["retry-after"]) > 0
        with pytest.raises(InvalidStatus) as denied:
            connect(feed.replace("http://", "ws://").replace("/energy?", "/energy/ws?"), open_timeout=10)
        assert denied.value.response.status_code == 429
    with contextlib.ExitStack() as streams:  # the streams are closed: their slots are free again
        assert wait_for(lambda: _open_stream(streams, feed).status_code == 200, timeout=10)


def test_live_connections_are_capped_in_total(own_api):
    api = own_api(live_max_per_address="2", live_max_total="3", trusted_proxies="127.0.0.1")
    feed = f"{api}/api/v1/live/snowplows"
    with contextlib.ExitStack() as streams:
        opened = [_open_stream(streams, feed, **{"X-Forwarded-For": f"198.51.100.{i}"}).status_code
                  for i in range(3)]
        assert opened == [200, 200, 200]
        refused = httpx.get(feed, headers={"X-Forwarded-For": "198.51.100.99"}, timeout=10)
        assert refused.status_code == 429 and "capacity" in refused.json()["detail"]
