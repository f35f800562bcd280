"""The consent registry: per resident, data category and purpose, with full history.

Consent is an append-only list of grant and withdraw events (``core.consent_events``); the
current state is the latest event per (subject, category, purpose). Every exit of personal data
(ingest of health readings, open-data publishing, research extracts) asks this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import psycopg
from psycopg.rows import dict_row

Category = Literal["energy", "location", "health", "registry"]
Purpose = Literal["open_data", "research", "services"]
CATEGORIES: tuple[str, ...] = ("energy", "location", "health", "registry")
PURPOSES: tuple[str, ...] = ("open_data", "research", "services")


class ConsentError(ValueError):
    """A consent change was refused."""


@dataclass(frozen=True)
class ConsentEvent:
    """One entry of a resident's consent history."""

    subject_id: str
    category: str
    purpose: str
    action: str
    at: datetime
    actor: str
    note: str


def _check(category: str, purpose: str) -> None:
    if category not in CATEGORIES:
        raise ConsentError(f"category must be one of {', '.join(CATEGORIES)}")
    if purpose not in PURPOSES:
        raise ConsentError(f"purpose must be one of {', '.join(PURPOSES)}")


def record(conn: psycopg.Connection, subject_id: str, category: str, purpose: str, action: str, actor: str,
           note: str = "", at: datetime | None = None) -> None:
    """Append a grant or withdrawal; a no-op change (granting what is granted) is still recorded."""
    _check(category, purpose)
    if action not in ("grant", "withdraw"):
        raise ConsentError("action must be grant or withdraw")
    conn.execute("insert into core.consent_events (subject_id, category, purpose, action, actor, note, at) "
                 "values (%s, %s, %s, %s, %s, %s, coalesce(%s, now()))",
                 (subject_id, category, purpose, action, actor, note, at))


def grant(conn: psycopg.Connection, subject_id: str, category: str, purpose: str, actor: str, note: str = "") -> None:
    """Record that ``subject_id`` consents to ``category`` data being used for ``purpose``."""
    record(conn, subject_id, category, purpose, "grant", actor, note)


def withdraw(conn: psycopg.Connection, subject_id: str, category: str, purpose: str, actor: str,
             note: str = "") -> None:
    """Record a withdrawal; it takes effect at the next publish run in every dataset."""
    record(conn, subject_id, category, purpose, "withdraw", actor, note)


def has_consent(conn: psycopg.Connection, subject_id: str, category: str, purpose: str) -> bool:
    """True if the latest event for (subject, category, purpose) is a grant."""
    return conn.execute("select 1 from core.consents_current where subject_id = %s and category = %s and purpose = %s",
                        (subject_id, category, purpose)).fetchone() is not None


def consenting_subjects(conn: psycopg.Connection, category: str, purpose: str) -> set[str]:
    """Everyone with an active consent for ``category`` and ``purpose``."""
    _check(category, purpose)
    return {r[0] for r in conn.execute("select subject_id from core.consents_current where category = %s "
                                       "and purpose = %s", (category, purpose)).fetchall()}


def history(conn: psycopg.Connection, subject_id: str) -> list[ConsentEvent]:
    """Every consent event of ``subject_id``, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("select subject_id, category, purpose, action, at, actor, note from core.consent_events "
                    "where subject_id = %s order by at, id", (subject_id,))
        return [ConsentEvent(**r) for r in cur.fetchall()]


def current(conn: psycopg.Connection, subject_id: str) -> list[dict]:
    """The active consents of ``subject_id``."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("select category, purpose, granted_at from core.consents_current where subject_id = %s "
                    "order by category, purpose", (subject_id,))
        return cur.fetchall()
