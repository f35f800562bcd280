"""One message's way through ingest: parse and validate, admit, turn into rows or a dead letter."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from cityos.ingest.admission import Admission
from cityos.ingest.normalise import parse_message
from cityos.ingest.rows import Rejected
from cityos.ingest.writer import TABLE_COLUMNS, DeadLetter, metric_tuple, vehicle_tuple

log = logging.getLogger(__name__)

VEHICLES = "telemetry.vehicle_positions"
HEALTH = "telemetry.health_readings"


@dataclass
class MessageOutcome:
    """Rows to write for one message, or its dead letter."""

    domain: str | None = None
    rows: dict[str, list[tuple]] = field(default_factory=dict)
    readings: int = 0
    newest_time: float | None = None
    dead_letter: DeadLetter | None = None
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
    outcome = MessageOutcome(info.domain, readings=parsed.reading_count, stream=(info.device_id, info.domain),
                             sequences=parsed.sequences)
    newest = None
    for table, rows in parsed.rows_by_table.items():
        if not rows:
            continue
        outcome.rows[table] = _as_tuples(table, rows)
        latest = max(r.time for r in rows)
        newest = latest if newest is None or latest > newest else newest
    outcome.newest_time = newest.timestamp() if newest else None
    return outcome


def _device_from_topic(topic: str) -> str | None:
    parts = topic.split("/")
    return parts[3][:64] if len(parts) >= 4 and parts[0] == "cityos" else None
