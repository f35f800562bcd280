"""The consent registry through its API and module: history, current state, audit."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from cityos.platform import consent
from cityos.platform.auth import create_token


@pytest.fixture(scope="module")
def staff(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        return {"Authorization": f"Bearer {create_token(conn, 'portal', ['consent:write'])}"}


def test_withdrawal_ends_the_consent_but_keeps_the_history(api, staff):
    body = {"subject_id": "r-c1", "category": "energy", "purpose": "open_data"}
    httpx.post(f"{api}/api/v1/consents", json={**body, "action": "grant"}, headers=staff).raise_for_status()
    resp = httpx.post(f"{api}/api/v1/consents", json={**body, "action": "withdraw"}, headers=staff)
    assert resp.status_code == 201
    assert resp.json()["current"] == []
    shown = httpx.get(f"{api}/api/v1/consents/r-c1", headers=staff).json()
    assert [e["action"] for e in shown["history"]] == ["grant", "withdraw"]


def test_consent_changes_need_the_consent_scope(api, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        other = {"Authorization": f"Bearer {create_token(conn, 'devices-only', ['devices:read'])}"}
    resp = httpx.post(f"{api}/api/v1/consents", headers=other,
                      json={"subject_id": "r-c2", "category": "health", "purpose": "research", "action": "grant"})
    assert resp.status_code == 403


def test_unknown_category_is_refused(api, staff):
    resp = httpx.post(f"{api}/api/v1/consents", headers=staff,
                      json={"subject_id": "r-c3", "category": "dna", "purpose": "research", "action": "grant"})
    assert resp.status_code == 422


def test_consent_is_per_purpose(db):
    consent.grant(db, "r-c4", "health", "research", "test")
    assert consent.has_consent(db, "r-c4", "health", "research")
    assert not consent.has_consent(db, "r-c4", "health", "open_data")
    assert "r-c4" in consent.consenting_subjects(db, "health", "research")
