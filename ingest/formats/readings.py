"""Stream ``readings``: the cityos JSON format, one reading object or ``{"batch": [reading, ...]}``.

A reading is ``{"t": <time>, <field>: <value>, ...}`` with the fields of the domain's catalog; the
readings are passed on as they are (validation happens in :mod:`cityos.ingest.normalise`).
"""

from __future__ import annotations

from cityos.ingest.contract import BATCH_FIELDS, BATCH_KEY, BATCH_KEYS, Rejected, TimeWindow, check_count

NAME = "readings"
#: Domains this format is offered for (``None``: all).
DOMAINS: frozenset[str] | None = None


def parse(document: object, domain: str, window: TimeWindow) -> list:
    """The readings of a cityos JSON document (each still to be validated)."""
    if document.__class__ is not dict:
        raise Rejected("bad_shape", 'expected a reading object or {"batch": [reading, ...]}')
    if BATCH_KEY not in document:  # type: ignore[operator]
        return [document]
    batch = document[BATCH_KEY]  # type: ignore[index]
    if batch.__class__ is not list or not BATCH_KEYS.issuperset(document):  # type: ignore[arg-type]
        raise Rejected("bad_shape", '"batch" must hold an array of readings, beside it only '
                                    + (", ".join(sorted(BATCH_FIELDS)) or "nothing"))
    for name in BATCH_FIELDS.keys() & document.keys():  # type: ignore[attr-defined]
        BATCH_FIELDS[name](document[name])  # type: ignore[index]
    check_count(len(batch))
    return batch
