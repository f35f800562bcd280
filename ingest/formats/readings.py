"""Stream ``readings``: the cityos JSON format, one reading object or ``{"batch": [reading, ...]}``.

A reading is ``{"t": <time>, <field>: <value>, ...}`` with the fields of the domain's catalog; the
readings are passed on as they are (validation happens in :mod:`cityos.ingest.normalise`).
"""

from __future__ import annotations

from cityos.ingest.rows import Rejected
from cityos.ingest.validation import TimeWindow, check_count

NAME = "readings"
#: Domains this format is offered for (``None``: all).
DOMAINS: frozenset[str] | None = None


def parse(document: object, domain: str, window: TimeWindow) -> list:
    """The readings of a cityos JSON document (each still to be validated)."""
    if document.__class__ is not dict:
        raise Rejected("bad_shape", 'expected a reading object or {"batch": [reading, ...]}')
    if "batch" not in document:  # type: ignore[operator]
        return [document]
    batch = document["batch"]  # type: ignore[index]
    if batch.__class__ is not list or len(document) != 1:  # type: ignore[arg-type]
        raise Rejected("bad_shape", '"batch" must be the only key and hold an array of readings')
    check_count(len(batch))
    return batch
