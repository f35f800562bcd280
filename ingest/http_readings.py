"""Readings that arrive over HTTP (NGSI-LD producers, SensorThings Observations) take the MQTT readings' path.

A device's readings become one message of the payload contract (one reading, or ``{"batch": [...]}``) on the
device's own ``readings`` topic, handed to :func:`cityos.ingest.pipeline.process_message` (the worker's
parser, validation and consent admission) and added to a writer :class:`~cityos.ingest.writer.Batch`: rows or
a dead letter with the reason, and the device's ledger, written together by
:func:`~cityos.ingest.writer.write_batch`.
"""

from __future__ import annotations

import json
from datetime import datetime

import psycopg

from cityos.ingest.admission import Admission
from cityos.ingest.contract import topic_for
from cityos.ingest.pipeline import MessageOutcome, process_message
from cityos.ingest.writer import Batch


def add_readings(batch: Batch, conn: psycopg.Connection, domain: str, device_id: str, readings: list[dict], *,
                 now: datetime, admission: Admission, client_id: str) -> MessageOutcome:
    """Admit ``readings`` (``{"t": time, metric: value, ...}`` each) of one device as one MQTT message would be
    admitted, and add the outcome to ``batch``; the outcome says whether they became a dead letter."""
    payload = json.dumps(readings[0] if len(readings) == 1 else {"batch": readings}).encode()
    outcome = process_message(topic_for(domain, device_id), payload, now=now, admission=admission, conn=conn,
                              client_id=client_id)
    batch.add_outcome(outcome)  # rows or dead letter, and the device's ledger, as for an MQTT message
    return outcome
