"""``/metrics`` carries what the committed Prometheus rules and Grafana dashboard use: API requests by
route template, silent devices and recent dead letters from the database."""

from __future__ import annotations

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

API_DATABASE = "private_database_url"  # the shared API (tests/conftest.py) on the database below


@pytest.fixture(scope="module")
def private_database_url(private_database_url):
    """The module's database with a device that never sent a reading and a recent dead letter."""
    from cityos.ingest.devices import add_device

    with psycopg.connect(private_database_url, autocommit=True) as conn:
        add_device(conn, "hems-mon-quiet", "hems")
        conn.execute("insert into core.dead_letters (topic, device_id, reason, payload) "
                     "values ('cityos/v1/hems/x/readings', 'x', 'unknown_device', '')")
    return private_database_url


@pytest.fixture(scope="module")
def metrics(api):
    """One scrape after a device that never sent a reading was registered and a few requests were answered."""
    httpx.get(f"{api}/healthz")
    httpx.get(f"{api}/api/v1/devices/hems-mon-quiet")  # 401: counted under its template, not its path
    text = httpx.get(f"{api}/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_api_requests_are_counted_by_route_template(metrics):
    assert metrics[("cityos_api_requests_total", (("method", "GET"), ("route", "/healthz"), ("status", "200")))] >= 1
    routes = {dict(labels).get("route") for name, labels in metrics if name == "cityos_api_requests_total"}
    assert "/api/v1/devices/hems-mon-quiet" not in routes


def test_a_device_without_readings_counts_as_silent(metrics):
    assert metrics[("cityos_devices_silent", (("domain", "hems"),))] >= 1
    assert metrics[("cityos_database_up", ())] == 1


def test_recent_dead_letters_are_counted_from_the_database(metrics):
    assert metrics[("cityos_dead_letters_recent", ())] >= 1
