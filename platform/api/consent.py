"""Consent API: staff record consent for residents; the resident portal reads and changes its own."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from cityos.platform import consent
from cityos.platform.auth import Principal, require_scope
from cityos.platform.db.connection import connect

router = APIRouter(prefix="/api/v1/consents", tags=["consent"])


class ConsentChange(BaseModel):
    """A grant or withdrawal for one resident, category and purpose."""

    subject_id: str = Field(min_length=1, max_length=64, examples=["r-000123"])
    category: Literal["energy", "location", "health", "registry"]
    purpose: Literal["open_data", "research", "services"]
    action: Literal["grant", "withdraw"]
    note: str = Field("", max_length=500)


@router.post("", status_code=201, summary="Record a consent grant or withdrawal")
def change(body: ConsentChange, principal: Principal = Depends(require_scope("consent:write"))) -> dict:
    """Append the change to the resident's history; withdrawals apply at the next publish run."""
    with connect(autocommit=True) as conn:
        consent.record(conn, body.subject_id, body.category, body.purpose, body.action, principal.name, body.note)
        return {"subject_id": body.subject_id, "current": consent.current(conn, body.subject_id)}


@router.get("/{subject_id}", summary="A resident's current consents and history")
def show(subject_id: str, _: Principal = Depends(require_scope("consent:write"))) -> dict:
    """Current consents and the full history of one resident (staff, audited)."""
    with connect(autocommit=True) as conn:
        return {"subject_id": subject_id, "current": consent.current(conn, subject_id),
                "history": [e.__dict__ for e in consent.history(conn, subject_id)]}
