"""Residents' hydrant reports: anonymous, rate-limited, public only after moderation."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from cityos.platform.auth import create_token


@pytest.fixture(scope="module")
def hydrant(database_url) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("insert into gis.fire_water (id, kind, geom) values "
                     "('HR1', '消火栓', st_setsrid(st_point(139.93, 37.49), 4326)) on conflict do nothing")
    return "HR1"


@pytest.fixture(scope="module")
def api(hydrant, api):  # the shared API (tests/conftest.py), started once the hydrant exists
    return api


def test_report_for_an_unknown_hydrant_is_404(api):
    assert httpx.post(f"{api}/api/v1/hydrants/NOPE/reports", json={"status": "buried"}).status_code == 404


def test_report_is_public_only_after_a_moderator_approves_it(api, database_url):
    created = httpx.post(f"{api}/api/v1/hydrants/HR1/reports", json={"status": "buried"})
    assert created.status_code == 202
    assert all(s["hydrant_id"] != "HR1" for s in httpx.get(f"{api}/api/v1/hydrants/status").json())
    with psycopg.connect(database_url, autocommit=True) as conn:
        staff = {"Authorization": f"Bearer {create_token(conn, 'fire-crew', ['hydrants:moderate'])}"}
    report_id = created.json()["report_id"]
    assert any(r["id"] == report_id for r in httpx.get(f"{api}/api/v1/hydrants/reports", headers=staff).json())
    httpx.post(f"{api}/api/v1/hydrants/reports/{report_id}/moderation", json={"decision": "approved"},
               headers=staff).raise_for_status()
    statuses = {s["hydrant_id"]: s["status"] for s in httpx.get(f"{api}/api/v1/hydrants/status").json()}
    assert statuses["HR1"] == "buried"


def test_reports_from_one_address_are_rate_limited(api):
    codes = [httpx.post(f"{api}/api/v1/hydrants/HR1/reports", json={"status": "cleared"}).status_code
             for _ in range(4)]
    assert codes[-1] == 429


def test_moderation_needs_the_scope(api):
    assert httpx.get(f"{api}/api/v1/hydrants/reports").status_code == 401
