"""One message's way through ingest: parse and validate, admit, turn into rows or a dead letter."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg

from cityos.ingest.admission import Admission
from cityos.ingest.normalise import parse_message
from cityos.ingest.rows import VEHICLES, Rejected
from cityos.ingest.writer import TABLE_COLUMNS, DeadLetter, metric_tuple, vehicle_tuple

log = logging.getLogger(__name__)

#: A reading older than this when it arrives is late (the ledger counts it; its day becomes due again).
LATE_AFTER = timedelta(hours=1)



@dataclass
class MessageOutcome:
    """Rows to write for one message, or its dead letter; what the ledger needs to account for it."""

    domain: str | None = None
    rows: dict[str, list[tuple]] = field(default_factory=dict)
    readings: int = 0
    newest_time: float | None = None
    dead_letter: DeadLetter | None = None
    device_id: str | None = None
    #: Per table: (oldest, newest, late) observation times of its rows and how many are late.
    spans: dict[str, tuple[datetime, datetime, int]] = field(default_factory=dict)
    stream: tuple[str, str] | None = None  # (device_id, domain): whose sequence numbers ``sequences`` are
    sequences: list[int] = field(default_factory=list)


def _as_tuples(table: str, rows: list) -> list[tuple]:
    if table == VEHICLES:
        return [vehicle_tuple(r) for r in rows]
    with_label = "label" in TABLE_COLUMNS[table]
    return [metric_tuple(r, with_label) for r in rows]


def withheld(payload: bytes) -> tuple[bytes, str]:
    """What a dead letter keeps of personal data stored without consent: nothing but size and hash."""
    return b"", f"payload withheld ({len(payload)} bytes, sha256 {hashlib.sha256(payload).hexdigest()})"


def process_message(topic: str, payload: bytes, *, now: datetime, admission: Admission,
                    conn: psycopg.Connection | None = None, client_id: str | None = None) -> MessageOutcome:
    """Parse, validate and admit one message; never raises for bad input."""
    try:
        info, parsed = parse_message(topic, payload, now=now)
    except Rejected as rejected:
        device_id = _device_from_topic(topic)
        return MessageOutcome(dead_letter=DeadLetter(topic, payload, rejected.reason, rejected.detail, client_id,
                                                     device_id))
    except Exception as exc:
        log.exception("parser failed on a message; dead-lettered", extra={"topic": topic[:200]})
        return MessageOutcome(dead_letter=DeadLetter(topic, payload, "internal_error", repr(exc)[:500], client_id,
                                                     _device_from_topic(topic)))
    refusal = admission.check(info.device_id, info.domain, conn)
    if refusal is not None:
        reason, detail = refusal
        kept = payload
        if reason == "no_consent":
            kept, note = withheld(payload)
            detail = f"{detail}; {note}"
        return MessageOutcome(info.domain, dead_letter=DeadLetter(topic, kept, reason, detail, client_id,
                                                                  info.device_id))
    outcome = MessageOutcome(info.domain, readings=parsed.reading_count, device_id=info.device_id,
                             stream=(info.device_id, info.domain), sequences=parsed.sequences)
    newest = None
    late_before = now - LATE_AFTER
    for table, rows in parsed.rows_by_table.items():
        if not rows:
            continue
        outcome.rows[table] = _as_tuples(table, rows)
        times = [r.time for r in rows]
        oldest, latest = min(times), max(times)
        if oldest >= late_before:
            late = 0
        elif latest < late_before:  # a backlog: every reading is late
            late = len(times)
        else:
            late = sum(1 for t in times if t < late_before)
        outcome.spans[table] = (oldest, latest, late)
        newest = latest if newest is None or latest > newest else newest
    outcome.newest_time = newest.timestamp() if newest else None
    return outcome


def _device_from_topic(topic: str) -> str | None:
    parts = topic.split("/")
    return parts[3][:64] if len(parts) >= 4 and parts[0] == "cityos" else None
