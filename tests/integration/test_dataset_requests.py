"""Dataset requests: citizens ask through the API, staff answer and close; contacts stay private."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from cityos.opendata.api import REQUEST_LIMITS
from cityos.platform.auth import create_token


@pytest.fixture(scope="module")
def staff(database_url) -> dict:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return {"Authorization": f"Bearer {create_token(conn, 'opendata-desk', ['requests:manage'])}"}


def _ask(api: str, title: str, contact: str = "") -> httpx.Response:
    return httpx.post(f"{api}/api/v1/dataset-requests",
                      json={"title": title, "description": "CSV がほしい", "contact": contact})


def test_a_citizen_request_is_listed_publicly_without_its_contact(api):
    created = _ask(api, "AED設置箇所一覧", contact="taro@example.jp")
    assert created.status_code == 201
    assert created.json()["status"] == "open" and "contact" not in created.json()
    listed = httpx.get(f"{api}/api/v1/dataset-requests").json()
    assert any(r["id"] == created.json()["id"] for r in listed)
    assert all("contact" not in r for r in listed)
    assert "taro@example.jp" not in httpx.get(f"{api}/api/v1/dataset-requests/{created.json()['id']}").text


def test_staff_see_the_contact_in_their_inbox(api, staff):
    created = _ask(api, "除雪計画路線", contact="hanako@example.jp").json()
    inbox = httpx.get(f"{api}/api/v1/dataset-requests/inbox", headers=staff).json()
    assert {"id": created["id"], "contact": "hanako@example.jp"}.items() <= \
        next(r for r in inbox if r["id"] == created["id"]).items()


def test_staff_answer_then_close_a_request_and_it_is_audited(api, staff, database_url):
    request_id = httpx.post(f"{api}/api/v1/dataset-requests", json={"title": "公衆トイレ一覧"}).json()["id"]
    answered = httpx.post(f"{api}/api/v1/dataset-requests/{request_id}/answer", headers=staff,
                          json={"answer": "来月公開します / next month"})
    assert answered.json()["status"] == "answered"
    httpx.post(f"{api}/api/v1/dataset-requests/{request_id}/answer", headers=staff,
               json={"answer": "公開しました / published", "status": "closed"}).raise_for_status()
    public = httpx.get(f"{api}/api/v1/dataset-requests/{request_id}").json()
    assert (public["status"], public["answer"]) == ("closed", "公開しました / published")
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("select action, subject, reason from core.audit_log where resource = %s order by id",
                            (f"/api/v1/dataset-requests/{request_id}/answer",)).fetchall()
    assert rows == [("POST /api/v1/dataset-requests/{request_id}/answer", str(request_id),
                     "answer a dataset request")] * 2


def test_answering_needs_the_requests_scope(api, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        other = {"Authorization": f"Bearer {create_token(conn, 'moderator', ['hydrants:moderate'])}"}
    assert httpx.post(f"{api}/api/v1/dataset-requests/1/answer", json={"answer": "x"}).status_code == 401
    assert httpx.post(f"{api}/api/v1/dataset-requests/1/answer", json={"answer": "x"},
                      headers=other).status_code == 403
    assert httpx.get(f"{api}/api/v1/dataset-requests/inbox").status_code == 401


def test_a_request_without_a_title_is_refused_with_the_reason(api):
    response = httpx.post(f"{api}/api/v1/dataset-requests", json={"title": "x"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "title"]


def test_requests_from_one_address_are_rate_limited(api):
    codes = [_ask(api, f"request {n}").status_code for n in range(REQUEST_LIMITS.per_minute + 1)]
    assert codes[-1] == 429
