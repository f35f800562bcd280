"""Gaps in a stream's sequence numbers: which numbered readings never arrived, and when they came late.

A **stream** is one device's readings of one domain: ``(device_id, domain)``, which is also one topic
``cityos/v1/{domain}/{device_id}/readings`` of a gateway. The edge gateway stamps each reading with
the stream's next sequence number ``sn`` (1, 2, 3, ...) when it enters its outbox, and the number stays
with the reading through every resend (payload contract, "Sequence numbers"). Readings without ``sn``
(third-party devices) are not bookkept.

Per stream the platform keeps the highest number seen and the **gaps**: maximal ranges of numbers
below it that never arrived. A number above the highest opens a gap for the numbers it skips (the
first number of a stream opens ``1..sn-1`` when it is above 1); a late number inside a gap closes
that gap and opens its remaining parts again (with the gap's original opening time); a number
already seen is a duplicate and changes nothing. Numbers arrive out of order normally (a gateway sends
events before routine readings, oldest observation first), so a gap may be open for the time one
batch takes; a gap that stays open is a loss (an outbox overflow, readings the gateway let go of and
the platform never stored) or a message that was refused (its dead letter holds the numbers).

:func:`advance` is the pure bookkeeping (ranges in, ranges out); :func:`record_sequences` applies it
in the writer's transaction; :func:`open_gaps` lists what is open.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg.rows import dict_row

from cityos.ingest.rows import MAX_SEQ, SEQ_FIELD

__all__ = ["MAX_SEQ", "SEQ_FIELD", "Advance", "advance", "open_gaps", "record_sequences"]

Range = tuple[int, int]  # first, last (inclusive)
Stream = tuple[str, str]  # device_id, domain


@dataclass(frozen=True)
class Advance:
    """A stream's bookkeeping after some numbers arrived."""

    highest: int  # 0: nothing seen yet
    gaps: list[Range]  # open gaps, in order
    opened: list[Range] = field(default_factory=list)  # gaps in ``gaps`` that were not open before
    closed: list[Range] = field(default_factory=list)  # gaps open before that are not open now as they were
    duplicates: int = 0  # numbers that were neither missing nor new


def _subtract(first: int, last: int, numbers: Sequence[int]) -> list[Range]:
    """``first..last`` without ``numbers`` (sorted, distinct), as maximal ranges."""
    pieces: list[Range] = []
    start = first
    for n in numbers[bisect_left(numbers, first):bisect_right(numbers, last)]:
        if n > start:
            pieces.append((start, n - 1))
        start = n + 1
    if start <= last:
        pieces.append((start, last))
    return pieces


def advance(highest: int, gaps: Sequence[Range], seqs: Iterable[int]) -> Advance:
    """The stream's state after ``seqs`` (positive, any order, repeats allowed) arrived.

    ``highest`` and ``gaps`` are the state before (``highest`` 0 for a new stream; ``gaps`` disjoint
    ranges below ``highest``).
    """
    given = list(seqs)
    numbers = sorted(set(given))
    if not numbers:
        return Advance(highest, sorted(gaps))
    top = max(highest, numbers[-1])
    before = sorted(gaps)
    candidates = [*before, (highest + 1, top)] if top > highest else before
    after: list[Range] = []
    filled = 0
    old = set(before)
    closed: list[Range] = []
    for first, last in candidates:
        pieces = _subtract(first, last, numbers)
        filled += (last - first + 1) - sum(b - a + 1 for a, b in pieces)
        if (first, last) in old and pieces != [(first, last)]:
            closed.append((first, last))
        after.extend(pieces)
    opened = [g for g in after if g not in old]
    return Advance(top, after, opened, closed, len(given) - filled)


# -- the database edge ------------------------------------------------------------------------------------

def record_sequences(cur: psycopg.Cursor, sequences: Mapping[Stream, list[int]], at: datetime) -> None:
    """Apply the numbers that ``sequences`` brought (per stream) to the stored bookkeeping, in ``cur``'s
    transaction (the writer's, so the bookkeeping and the rows commit together).

    A fixed number of statements per batch, whatever the number of streams; streams are locked in a
    fixed order, so concurrent workers never deadlock on them.
    """
    streams = sorted(k for k, v in sequences.items() if v)
    if not streams:
        return
    devices, domains = [d for d, _ in streams], [s for _, s in streams]
    cur.execute("insert into core.stream_sequences (device_id, stream, highest, updated_at)"
                " select d, s, 0, %s from unnest(%s::text[], %s::text[]) as u(d, s) order by d, s"
                " on conflict do nothing", (at, devices, domains))
    highest = {(d, s): h for d, s, h in cur.execute(
        "select device_id, stream, highest from core.stream_sequences where (device_id, stream) in"
        " (select * from unnest(%s::text[], %s::text[])) order by device_id, stream for update",
        (devices, domains)).fetchall()}
    open_rows: dict[Stream, list[tuple]] = {}
    for row in cur.execute(
            "select device_id, stream, id, first_sn, last_sn, opened_at from core.stream_gaps where closed_at is null"
            " and (device_id, stream) in (select * from unnest(%s::text[], %s::text[]))", (devices, domains)):
        open_rows.setdefault((row[0], row[1]), []).append(row[2:])
    closed: list[int] = []
    opened: list[tuple] = []
    raised: list[tuple] = []
    for key in streams:
        rows = open_rows.get(key, [])
        state = advance(highest[key], [(r[1], r[2]) for r in rows], sequences[key])
        closing = set(state.closed)
        closed += [r[0] for r in rows if (r[1], r[2]) in closing]
        for first, last in state.opened:  # a remainder of a gap keeps the gap's opening time
            since = next((r[3] for r in rows if r[1] <= first and last <= r[2]), at)
            opened.append((*key, first, last, since))
        if state.highest != highest[key]:
            raised.append((*key, state.highest))
    if closed:
        cur.execute("update core.stream_gaps set closed_at = %s where id = any(%s)", (at, closed))
    if opened:
        cur.execute("insert into core.stream_gaps (device_id, stream, first_sn, last_sn, opened_at)"
                    " select * from unnest(%s::text[], %s::text[], %s::bigint[], %s::bigint[], %s::timestamptz[])",
                    [list(column) for column in zip(*opened, strict=True)])
    if raised:
        cur.execute("update core.stream_sequences q set highest = u.h, updated_at = %s"
                    " from unnest(%s::text[], %s::text[], %s::bigint[]) as u(d, s, h)"
                    " where q.device_id = u.d and q.stream = u.s",
                    (at, *[list(column) for column in zip(*raised, strict=True)]))


def open_gaps(conn: psycopg.Connection, device_id: str | None = None, stream: str | None = None) -> list[dict]:
    """Open gaps (oldest first), optionally of one device and stream: device_id, stream, first, last,
    missing (how many numbers), opened_at."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select device_id, stream, first_sn as first, last_sn as last, last_sn - first_sn + 1 as missing,"
            " opened_at from core.stream_gaps where closed_at is null"
            " and (%(device)s::text is null or device_id = %(device)s)"
            " and (%(stream)s::text is null or stream = %(stream)s)"
            " order by opened_at, device_id, stream, first_sn",
            {"device": device_id, "stream": stream}).fetchall()
