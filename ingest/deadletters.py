"""The dead-letter store: list rejected messages and replay them after a fix.

Replay runs each stored payload through the same pipeline as live ingest (so a device
registered since, or a corrected catalog, now admits it) and records the outcome on the letter.
Letters whose payload was withheld (``no_consent``) cannot be replayed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg.rows import dict_row

from cityos.ingest.admission import Admission
from cityos.ingest.pipeline import process_message
from cityos.ingest.writer import Batch, write_batch


def list_dead_letters(conn: psycopg.Connection, *, reason: str | None = None, pending_only: bool = False,
                      limit: int = 100, before_id: int | None = None) -> list[dict]:
    """Newest first; ``before_id`` pages backwards. Payloads are returned as text where they decode."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select id, received_at, topic, client_id, device_id, reason, detail, payload, replayed_at, replay_result"
            " from core.dead_letters where (%(reason)s::text is null or reason = %(reason)s)"
            " and (not %(pending)s or replayed_at is null) and (%(before)s::bigint is null or id < %(before)s)"
            " order by id desc limit %(limit)s",
            {"reason": reason, "pending": pending_only, "before": before_id, "limit": limit})
        rows = cur.fetchall()
    for row in rows:
        raw = bytes(row.pop("payload"))
        try:
            row["payload"] = raw.decode()
        except UnicodeDecodeError:
            row["payload"] = None
        row["payload_bytes"] = len(raw)
    return rows


@dataclass
class ReplayResult:
    """What a replay did."""

    replayed: int = 0
    stored: int = 0
    rejected_again: int = 0
    skipped: int = 0


def replay(conn: psycopg.Connection, *, ids: list[int] | None = None, reason: str | None = None,
           limit: int = 10_000) -> ReplayResult:
    """Replay pending dead letters (by id or reason) through the pipeline; record each outcome."""
    result = ReplayResult()
    admission = Admission()
    admission.refresh(conn, force=True)
    rows = conn.execute(
        "select id, topic, payload, client_id, reason, received_at from core.dead_letters where replayed_at is null"
        " and (%(ids)s::bigint[] is null or id = any(%(ids)s)) and (%(reason)s::text is null or reason = %(reason)s)"
        " order by id limit %(limit)s", {"ids": ids, "reason": reason, "limit": limit}).fetchall()
    for letter_id, topic, payload, client_id, old_reason, received_at in rows:
        if old_reason == "no_consent" and not payload:
            result.skipped += 1
            continue
        # Time checks are made against the arrival time: late data stays as acceptable as it was.
        outcome = process_message(topic, bytes(payload), now=received_at, admission=admission, conn=conn,
                                  client_id=client_id)
        batch = Batch(received_at=datetime.now(UTC))
        if outcome.dead_letter is None:  # its delivery was counted (as refused) when it first came
            batch.add_outcome(outcome, count_message=False)  # a stored replay fills its gap
        with conn.transaction():
            write_batch(conn, batch)
            verdict = "stored" if outcome.dead_letter is None else f"rejected: {outcome.dead_letter.reason}"
            conn.execute("update core.dead_letters set replayed_at = now(), replay_result = %s where id = %s",
                         (verdict, letter_id))
        result.replayed += 1
        if outcome.dead_letter is None:
            result.stored += 1
        else:
            result.rejected_again += 1
    conn.commit()
    return result
