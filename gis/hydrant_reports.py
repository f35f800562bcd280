"""Residents mark hydrants as buried in snow or cleared; staff and fire crews moderate and see them.

Reports are anonymous (only a salted hash of the reporter's address is kept, for rate limiting),
limited to a few per address and hour, and shown publicly only once approved.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from psycopg.rows import dict_row
from pydantic import BaseModel

from cityos.platform.auth import Principal, require_scope
from cityos.platform.db.connection import connect
from cityos.platform.ratelimit import Limits, RateLimiter

router = APIRouter(prefix="/api/v1/hydrants", tags=["hydrant reports"])
REPORT_LIMITS = Limits(per_minute=3, per_day=30)
_limiter = RateLimiter()


class ReportIn(BaseModel):
    status: Literal["buried", "cleared"]


class Decision(BaseModel):
    decision: Literal["approved", "rejected"]


def _reporter(request: Request) -> str:
    salt = request.app.state.settings.database_url  # never published; stable per deployment
    address = request.client.host if request.client else "unknown"
    return hashlib.sha256(f"{salt}|{address}".encode()).hexdigest()[:32]


@router.post("/{hydrant_id}/reports", status_code=202, summary="Report a hydrant buried or cleared / 埋没・除雪報告")
def report(hydrant_id: str, body: ReportIn, request: Request) -> dict:
    """Anonymous; at most 3 a minute and 30 a day from one address; visible once a moderator approves."""
    reporter = _reporter(request)
    retry = _limiter.check(reporter, REPORT_LIMITS)
    if retry is not None:
        raise HTTPException(429, "too many reports; please try later", headers={"Retry-After": str(retry)})
    with connect(autocommit=True) as conn:
        row = conn.execute("insert into gis.hydrant_reports (hydrant_id, status, reporter_hash) "
                           "select id, %s, %s from gis.fire_water where id = %s returning id",
                           (body.status, reporter, hydrant_id)).fetchone()
    if row is None:
        raise HTTPException(404, f"no hydrant {hydrant_id}")
    return {"report_id": row[0], "moderation": "pending"}


@router.get("/reports", summary="Reports waiting for moderation (staff)")
def pending(_: Principal = Depends(require_scope("hydrants:moderate"))) -> list[dict]:
    with connect(autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("select id, hydrant_id, status, reported_at from gis.hydrant_reports "
                           "where moderation = 'pending' order by reported_at").fetchall()


@router.post("/reports/{report_id}/moderation", summary="Approve or reject a report (staff)")
def moderate(report_id: int, body: Decision, principal: Principal = Depends(require_scope("hydrants:moderate"))):
    with connect(autocommit=True) as conn:
        row = conn.execute("update gis.hydrant_reports set moderation = %s, moderated_by = %s, moderated_at = now() "
                           "where id = %s and moderation = 'pending' returning id",
                           (body.decision, principal.name, report_id)).fetchone()
    if row is None:
        raise HTTPException(404, "no pending report with that id")
    return {"report_id": report_id, "moderation": body.decision}


@router.get("/status", summary="Latest approved status of each reported hydrant / 消火栓の状況")
def status() -> list[dict]:
    """For fire crews and the map: each hydrant's latest approved report."""
    with connect(autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("select distinct on (hydrant_id) hydrant_id, status, reported_at "
                           "from gis.hydrant_reports where moderation = 'approved' "
                           "order by hydrant_id, reported_at desc").fetchall()
