"""Dataset requests: citizens ask for a dataset; staff answer and close (as on DATA for CITIZEN).

The requester's contact is personal data: stored for staff, never in public listings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

Status = Literal["open", "answered", "closed"]
PUBLIC_FIELDS = "id, title, description, status, answer, created_at, updated_at"
STAFF_FIELDS = PUBLIC_FIELDS + ", contact, answered_by"


class RequestIn(BaseModel):
    """A citizen's request for a dataset."""

    title: str = Field(min_length=3, max_length=200, examples=["市内のAED設置箇所一覧 / AED locations"])
    description: str = Field("", max_length=4000, examples=["CSV で公開してほしい / Please publish it as CSV."])
    contact: str = Field("", max_length=200, description="How staff may reach you (optional; never published).")


class RequestOut(BaseModel):
    """A dataset request as shown to everyone."""

    id: int
    title: str
    description: str
    status: Status
    answer: str
    created_at: datetime
    updated_at: datetime


class StaffRequestOut(RequestOut):
    """A dataset request as shown to staff."""

    contact: str
    answered_by: str | None


class Answer(BaseModel):
    """Staff's answer; ``status`` answered (kept open for follow-up) or closed."""

    answer: str = Field(min_length=1, max_length=4000)
    status: Literal["answered", "closed"] = "answered"


def create(conn: psycopg.Connection, request: RequestIn, requester_hash: str = "") -> int:
    """Store a new request; returns its id."""
    row = conn.execute("insert into opendata.dataset_requests (title, description, contact, requester_hash) "
                       "values (%s, %s, %s, %s) returning id",
                       (request.title.strip(), request.description.strip(), request.contact.strip(),
                        requester_hash)).fetchone()
    assert row is not None
    return int(row[0])


def listing(conn: psycopg.Connection, status: str | None = None, *, staff: bool = False, limit: int = 100,
            offset: int = 0) -> list[dict]:
    """Requests, newest first (staff see the contact)."""
    fields = STAFF_FIELDS if staff else PUBLIC_FIELDS
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"select {fields} from opendata.dataset_requests "
                           "where %(status)s::text is null or status = %(status)s "
                           "order by created_at desc, id desc limit %(limit)s offset %(offset)s",
                           {"status": status, "limit": limit, "offset": offset}).fetchall()


def get(conn: psycopg.Connection, request_id: int, *, staff: bool = False) -> dict | None:
    """One request, or None."""
    fields = STAFF_FIELDS if staff else PUBLIC_FIELDS
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"select {fields} from opendata.dataset_requests where id = %s",
                           (request_id,)).fetchone()


def answer(conn: psycopg.Connection, request_id: int, text: str, status: str, actor: str) -> dict | None:
    """Answer (and optionally close) a request; None when there is no such request. The entry point (the
    API's token check, the CLI) writes the audit row."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("update opendata.dataset_requests set answer = %s, status = %s, answered_by = %s, "
                          f"updated_at = now() where id = %s returning {STAFF_FIELDS}",
                          (text, status, actor, request_id)).fetchone()
    return row
