"""Store-and-forward outbox: every reading is written here (SQLite, WAL) before anything sends it.

A row leaves the outbox only when the platform has confirmed that the message carrying it is stored
(:meth:`Outbox.confirmed`; or, with confirmation off, when the broker acknowledged it: PUBACK), when it
expires, or under the overflow policy. Each message gets a sequence number (``seq``, never reused).
A row's ``sent`` state: 0 waiting, 1 in a message awaiting its PUBACK, 2 acknowledged by the broker and
awaiting the platform's confirmation. On start the in-flight marks (1) are cleared, so after a crash
(kill -9 mid-batch) unacknowledged rows are simply sent again; rows awaiting confirmation keep their
``seq`` (the confirmation may still come). A row unconfirmed ``confirm_timeout`` after its PUBACK
(doubling with each attempt, at most an hour) is sent again in a new message
(:meth:`Outbox.resend_unconfirmed`): the broker had acknowledged a message it could not deliver (a
restarted Mosquitto does not restore the ingest workers' shared subscription). The platform
deduplicates by ``(device, time)`` keys, so a resend is harmless.

Order: a batch holds readings of one topic and one priority in observation-time order (``t``, then
insertion order). Event readings (priority :data:`EVENT`, e.g. harsh braking) go before routine ones,
so a backlog does not delay them; within a priority the oldest readings go first.

Overflow policy (the outbox holds at most ``max_bytes`` of readings, those awaiting confirmation
included): when a new reading pushes it over the limit, rows not in flight are deleted until it is at
90 % of the limit, in this order:
1. readings the broker acknowledged that await the platform's confirmation, oldest acknowledgement
   first (most likely stored already: dropping them falls back to the broker's guarantee),
2. then unsent routine readings (priority 0), oldest first,
3. then unsent events (priority 1), oldest first.
Each drop is counted (``dropped_overflow_unconfirmed``, ``dropped_overflow_routine``,
``dropped_overflow_event``). Readings older than
``max_age`` (the platform refuses data older than 30 days) are deleted as ``dropped_expired``, and
readings held for an unsynchronised clock of an earlier boot (never datable) as ``dropped_undatable``.

Sequence numbers (``sn``): each reading gets the next number of its stream (its topic: one device and
domain) when it enters the outbox, and keeps it through every resend, so the platform can tell which
readings never arrived (``cityos.ingest.gaps``). The numbers start at 1 in a new outbox file.

Kept readings: a reading that has left the queue (confirmed, or acknowledged with confirmation off) is
kept in the table ``kept`` for ``keep_s`` seconds and at most ``keep_bytes`` (oldest first out), so that
the platform can ask for a range of numbers again (:meth:`Outbox.resend`, the command topic
``cityos/command/v1/{device_id}/resend``): a broker may acknowledge a message and then lose it. Either
bound 0 keeps nothing.

Privacy: ``secure_delete`` is on, so deleted readings (health data!) do not linger in free pages.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cityos.ingest.contract import MAX_PAYLOAD_BYTES, MAX_READINGS, SEQ_FIELD, BatchBuilder, format_time
from cityos.ingest.gateway.counters import Counters

ROUTINE, EVENT = 0, 1
PRIORITIES = (EVENT, ROUTINE)  # sending order
_ROW_OVERHEAD = 64  # bytes per row beyond topic and body (ids, times, index entries), for the size bound
_SCHEMA = """
create table if not exists readings (
    id integer primary key autoincrement,  -- never reused: an ack must not delete a newer row
    topic text not null,
    t real not null,               -- observation time, Unix epoch seconds (UTC)
    priority integer not null,     -- 0 routine, 1 event
    body text not null,            -- the reading's metrics as a JSON object, without t
    clock_ok integer not null,     -- 0: stamped by an unsynchronised clock, held until re-stamped
    mono real,                     -- monotonic clock at observation (null: time given by the source)
    boot text not null,            -- kernel boot id at observation
    size integer not null,         -- bytes counted against the size limit
    sent integer not null default 0,  -- 1: in a message awaiting its PUBACK; 2: awaiting confirmation
    seq integer,                   -- the message it was last sent in (sent 1 and 2)
    acked_at real,                 -- wall clock of the PUBACK (sent 2)
    attempts integer not null default 0,  -- sends that were acknowledged but never confirmed
    sn integer                     -- sequence number in its stream (topic), given at enqueue; null: older release
);
create index if not exists readings_queue on readings (sent, priority, t, id);
create table if not exists counters (name text primary key, value integer not null);
create table if not exists state (key text primary key, value text not null, updated real not null);
create table if not exists kept (  -- readings that left the queue, for a resend on request
    id integer primary key autoincrement,
    topic text not null,
    sn integer not null,
    t real not null,
    priority integer not null,
    body text not null,
    size integer not null,
    kept_at real not null,          -- wall clock when it left the queue
    unique (topic, sn)
);
"""


@dataclass(frozen=True, slots=True)
class Batch:
    """Readings taken for one message: their row ids, topic and the encoded payload."""

    topic: str
    ids: list[int]
    payload: bytes
    priority: int
    seq: int = 0  # the message's sequence number (MQTT 5 user property "seq"), for confirmation

    @property
    def count(self) -> int:
        """Number of readings in the message."""
        return len(self.ids)


class Outbox:
    """The SQLite outbox (one connection, serialised by a lock: adapters, HTTP threads and the sender share it)."""

    def __init__(self, path: str | Path, *, max_bytes: int, max_age: float = 29 * 86400, durable: bool = False,
                 boot: str = "", counters: Counters | None = None, keep_s: float = 0, keep_bytes: int = 0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.boot = boot
        self.keep_s, self.keep_bytes = keep_s, keep_bytes
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        self._db.execute("pragma journal_mode = wal")
        self._db.execute(f"pragma synchronous = {'full' if durable else 'normal'}")
        self._db.execute("pragma secure_delete = on")
        self._db.execute("pragma journal_size_limit = 4194304")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("pragma table_info(readings)")}
        for column, kind in (("seq", "integer"), ("acked_at", "real"), ("attempts", "integer not null default 0"),
                             ("sn", "integer")):
            if column not in columns:  # an outbox of an earlier release
                self._db.execute(f"alter table readings add column {column} {kind}")
        self._db.execute("create index if not exists readings_seq on readings (seq) where seq is not null")
        self.counters = counters if counters is not None else Counters(self.load_counters())
        self._bytes = self._db.execute("select coalesce(sum(size), 0) from readings").fetchone()[0]
        self._kept_bytes = self._db.execute("select coalesce(sum(size), 0) from kept").fetchone()[0]

    # -- lifecycle --------------------------------------------------------------------------------
    def recover(self) -> dict[str, int]:
        """At start: release rows marked sent by a dead process; drop held rows of earlier boots."""
        with self._lock:
            released = self._db.execute("update readings set sent = 0, seq = null where sent = 1").rowcount
            undatable = self._delete_where("clock_ok = 0 and boot != ?", (self.boot,))
        self.counters.inc("dropped_undatable", undatable)
        return {"released": released, "undatable": undatable}

    def close(self) -> None:
        """Checkpoint the WAL and close."""
        with self._lock:
            try:
                self._db.execute("pragma wal_checkpoint(truncate)")
            finally:
                self._db.close()

    # -- writing ----------------------------------------------------------------------------------
    def put(self, topic: str, t: float, metrics: dict[str, object] | str, *, priority: int = ROUTINE,
            trusted: bool = True, mono: float | None = None) -> int:
        """Store one reading; returns its row id. ``metrics`` is a dict or its JSON text."""
        return self.put_many([(topic, t, metrics, priority, trusted, mono)])[-1]

    def put_many(self, rows: list[tuple[str, float, dict[str, object] | str, int, bool, float | None]]) -> list[int]:
        """Store several readings in one transaction: (topic, t, metrics, priority, trusted, mono)."""
        ids: list[int] = []
        added = 0
        with self._lock:
            self._db.execute("begin immediate")
            try:
                numbers: dict[str, int] = {}
                for topic, t, metrics, priority, trusted, mono in rows:
                    body = metrics if isinstance(metrics, str) else json.dumps(
                        metrics, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
                    size = len(topic) + len(body.encode()) + _ROW_OVERHEAD
                    if topic not in numbers:
                        numbers[topic] = int(self.get_state(f"sn:{topic}") or 1)  # type: ignore[call-overload]  # an int
                    cur = self._db.execute(
                        "insert into readings (topic, t, priority, body, clock_ok, mono, boot, size, sn)"
                        " values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (topic, t, priority, body, int(trusted), mono, self.boot, size, numbers[topic]))
                    numbers[topic] += 1
                    ids.append(int(cur.lastrowid or 0))
                    added += size
                for topic, following in numbers.items():
                    self.set_state(f"sn:{topic}", following)
                self._db.execute("commit")
            except BaseException:
                self._db.execute("rollback")
                raise
            self._bytes += added
            self.counters.inc("enqueued", len(rows))
            self.counters.inc("enqueued_untrusted_clock", sum(1 for r in rows if not r[4]))
            if self._bytes > self.max_bytes:
                self._trim(int(self.max_bytes * 0.9))
        return ids

    def _trim(self, target: int) -> None:
        """Apply the overflow policy until the outbox holds at most ``target`` bytes."""
        for query, name in (
                ("select id, size from readings where sent = 2 order by acked_at, id limit 500",
                 "dropped_overflow_unconfirmed"),
                (f"select id, size from readings where sent = 0 and priority = {ROUTINE} order by t, id limit 500",
                 "dropped_overflow_routine"),
                (f"select id, size from readings where sent = 0 and priority = {EVENT} order by t, id limit 500",
                 "dropped_overflow_event")):
            while self._bytes > target:
                rows = self._db.execute(query).fetchall()
                if not rows:
                    break
                ids, freed, need = [], 0, self._bytes - target
                for row_id, size in rows:
                    ids.append(row_id)
                    freed += size
                    if freed >= need:
                        break
                self._db.execute("delete from readings where id in (select value from json_each(?))",
                                 (json.dumps(ids),))
                self._bytes -= freed
                self.counters.inc(name, len(ids))

    def _delete_where(self, where: str, params: tuple) -> int:
        with self._lock:
            row = self._db.execute(f"select count(*), coalesce(sum(size), 0) from readings where {where}",
                                   params).fetchone()
            if row[0]:
                self._db.execute(f"delete from readings where {where}", params)
                self._bytes -= row[1]
            return int(row[0])

    # -- sending ----------------------------------------------------------------------------------
    def next_batch(self, max_count: int = 500, max_bytes: int = MAX_PAYLOAD_BYTES - 1024) -> Batch | None:
        """Take the next readings to send (marking them sent), or None if nothing is ready.

        One topic, one priority, oldest first; no two readings with the same time text (the platform
        refuses such a message as ``duplicate_time``): a batch ends before a repeated time.
        """
        max_count = min(max_count, MAX_READINGS)
        with self._lock:
            for priority in PRIORITIES:
                head = self._db.execute(
                    "select topic from readings where sent = 0 and priority = ? and clock_ok = 1"
                    " order by t, id limit 1", (priority,)).fetchone()
                if head is None:
                    continue
                rows = self._db.execute(
                    "select id, t, body, sn from readings where sent = 0 and priority = ? and clock_ok = 1"
                    " and topic = ? order by t, id limit ?", (priority, head[0], max_count)).fetchall()
                ids: list[int] = []
                seen: set[str] = set()
                builder = BatchBuilder(max_bytes=max_bytes, max_count=max_count)
                for row_id, t, body, sn in rows:
                    stamp = format_time(t)
                    numbered = {"t": stamp} if sn is None else {"t": stamp, SEQ_FIELD: sn}
                    if stamp in seen or not builder.add({**numbered, **json.loads(body)}, force=not ids):
                        break
                    seen.add(stamp)
                    ids.append(row_id)
                seq = int(self.get_state("next_seq") or 1)  # type: ignore[call-overload]  # stored as an int
                self.set_state("next_seq", seq + 1)
                self._db.execute("update readings set sent = 1, seq = ? where id in (select value from json_each(?))",
                                 (seq, json.dumps(ids)))
                payload = builder.payload()
                return Batch(head[0], ids, payload, priority, seq)
        return None

    def acked(self, ids: list[int], *, confirm: bool = False, now: float | None = None) -> int:
        """The broker holds the message with these readings: delete them, or with ``confirm`` keep them until
        the platform confirms they are stored. Returns the rows concerned."""
        if not confirm:
            deleted = self._retire("id in (select value from json_each(?))", (json.dumps(ids),))
            self.counters.inc("sent", deleted)
            return deleted
        with self._lock:
            kept = self._db.execute("update readings set sent = 2, acked_at = ? where sent = 1 and id in"
                                    " (select value from json_each(?))",
                                    (time.time() if now is None else now, json.dumps(ids))).rowcount
        self.counters.inc("acked_awaiting_confirmation", kept)
        return kept

    def confirmed(self, seqs: list[int]) -> int:
        """The platform has stored the messages ``seqs``: delete their readings. Returns rows deleted."""
        deleted = self._retire("seq in (select value from json_each(?))", (json.dumps(seqs),))
        self.counters.inc("confirmed", deleted)
        self.counters.inc("sent", deleted)
        return deleted

    def resend_unconfirmed(self, timeout: float, now: float | None = None) -> int:
        """Make readings unconfirmed ``timeout * 2**attempts`` (at most an hour) after their PUBACK eligible
        for sending again, in a new message. Returns rows released."""
        now = time.time() if now is None else now
        with self._lock:
            released = self._db.execute(
                "update readings set sent = 0, seq = null, acked_at = null, attempts = attempts + 1"
                " where sent = 2 and acked_at + min(? * (1 << min(attempts, 12)), 3600) <= ?",
                (timeout, now)).rowcount
        self.counters.inc("resent_unconfirmed", released)
        return released

    def _retire(self, where: str, params: tuple) -> int:
        """Delete the readings ``where`` from the queue (they are stored or acknowledged), keeping the numbered
        ones in ``kept`` when keeping is on. Returns rows deleted."""
        if self.keep_s <= 0 or self.keep_bytes <= 0:
            return self._delete_where(where, params)
        with self._lock:
            self._db.execute("begin immediate")
            try:
                cur = self._db.execute(
                    "insert or ignore into kept (topic, sn, t, priority, body, size, kept_at)"
                    f" select topic, sn, t, priority, body, size, ? from readings where sn is not null and ({where})",
                    (time.time(), *params))
                if cur.rowcount:
                    self._kept_bytes = self._db.execute("select coalesce(sum(size), 0) from kept").fetchone()[0]
                deleted = self._delete_where(where, params)
                self._db.execute("commit")
            except BaseException:
                self._db.execute("rollback")
                raise
            if self._kept_bytes > self.keep_bytes:
                self.prune_kept()
        return deleted

    def prune_kept(self, now: float | None = None) -> int:
        """Forget kept readings older than ``keep_s``, then the oldest beyond ``keep_bytes``. Returns rows pruned."""
        cutoff = (time.time() if now is None else now) - self.keep_s
        with self._lock:
            pruned = self._db.execute("delete from kept where kept_at < ?", (cutoff,)).rowcount
            over = self._db.execute("select coalesce(sum(size), 0) from kept").fetchone()[0] - self.keep_bytes
            if over > 0:
                pruned += self._db.execute(
                    "delete from kept where id in (select id from (select id, size, sum(size) over"
                    " (order by kept_at, id) as running from kept) where running - size < ?)", (over,)).rowcount
            self._kept_bytes = self._db.execute("select coalesce(sum(size), 0) from kept").fetchone()[0]
        self.counters.inc("kept_pruned", pruned)
        return pruned

    def resend(self, topic: str, first: int, last: int) -> dict[str, int]:
        """Queue the kept readings of ``topic`` numbered ``first..last`` for sending again (they keep their
        numbers). Returns how many were ``requeued``, how many are still ``queued`` anyway, and how many
        are ``unavailable`` (never kept, or pruned)."""
        with self._lock:
            self._db.execute("begin immediate")
            try:
                queued = self._db.execute("select count(*) from readings where topic = ? and sn between ? and ?",
                                          (topic, first, last)).fetchone()[0]
                absent = ("from kept k where topic = ? and sn between ? and ? and not exists"
                          " (select 1 from readings r where r.topic = k.topic and r.sn = k.sn)")
                requeued, added = self._db.execute(f"select count(*), coalesce(sum(size), 0) {absent}",
                                                   (topic, first, last)).fetchone()
                self._db.execute("insert into readings (topic, t, priority, body, clock_ok, mono, boot, size, sn)"
                                 f" select topic, t, priority, body, 1, null, ?, size, sn {absent}",
                                 (self.boot, topic, first, last))
                moved = self._db.execute("select coalesce(sum(size), 0) from kept where topic = ? and sn between ?"
                                         " and ?", (topic, first, last)).fetchone()[0]
                self._db.execute("delete from kept where topic = ? and sn between ? and ?", (topic, first, last))
                self._db.execute("commit")
            except BaseException:
                self._db.execute("rollback")
                raise
            self._kept_bytes -= moved
            self._bytes += added
            if self._bytes > self.max_bytes:
                self._trim(int(self.max_bytes * 0.9))
        self.counters.inc("resend_requeued", requeued)
        unavailable = (last - first + 1) - requeued - queued
        self.counters.inc("resend_unavailable", unavailable)
        return {"requeued": requeued, "queued": queued, "unavailable": unavailable}

    def release(self, ids: list[int]) -> None:
        """The message was not accepted: make its readings eligible for sending again."""
        with self._lock:
            self._db.execute("update readings set sent = 0, seq = null where sent = 1 and id in"
                             " (select value from json_each(?))", (json.dumps(ids),))

    # -- housekeeping -----------------------------------------------------------------------------
    def expire(self, now: float | None = None) -> int:
        """Delete unsent readings older than ``max_age`` (the platform would refuse them)."""
        cutoff = (time.time() if now is None else now) - self.max_age
        dropped = self._delete_where("sent != 1 and clock_ok = 1 and t < ?", (cutoff,))
        self.counters.inc("dropped_expired", dropped)
        return dropped

    def restamp(self, offset: float, *, old_offset: float | None = None) -> int:
        """Re-stamp this boot's unsent readings as ``mono + offset`` and mark their time trusted.

        Without ``old_offset``: the readings held for an unsynchronised clock. With it: also the
        readings stamped by the clock before a jump (``t - mono`` within 1 s of ``old_offset``).
        """
        with self._lock:
            where = "boot = ? and sent = 0 and mono is not null and (clock_ok = 0"
            params: tuple = (offset, self.boot)
            if old_offset is not None:
                where += " or abs((t - mono) - ?) < 1.0"
                params += (old_offset,)
            cur = self._db.execute(f"update readings set t = mono + ?, clock_ok = 1 where {where})", params)
        self.counters.inc("restamped", cur.rowcount)
        return cur.rowcount

    # -- inspection -------------------------------------------------------------------------------
    def depth(self) -> dict[str, object]:
        """Rows waiting, by kind, with the oldest observation time and the bytes counted."""
        with self._lock:
            rows = self._db.execute(
                "select priority, clock_ok, sent, count(*), min(t), coalesce(sum(size), 0) from readings"
                " group by priority, clock_ok, sent").fetchall()
        out: dict[str, object] = {"total": 0, "routine": 0, "events": 0, "held_for_clock": 0, "in_flight": 0,
                                  "awaiting_confirmation": 0, "oldest": None, "bytes": 0,
                                  "max_bytes": self.max_bytes}
        oldest: float | None = None
        for priority, clock_ok, sent, count, min_t, size in rows:
            out["total"] += count  # type: ignore[operator]
            out["bytes"] += size  # type: ignore[operator]
            out["events" if priority == EVENT else "routine"] += count  # type: ignore[operator]
            if not clock_ok:
                out["held_for_clock"] += count  # type: ignore[operator]
            elif oldest is None or min_t < oldest:
                oldest = min_t
            if sent:
                out["in_flight" if sent == 1 else "awaiting_confirmation"] += count  # type: ignore[operator]
        out["oldest"] = format_time(oldest) if oldest is not None else None
        return out

    def load_counters(self) -> dict[str, int]:
        """Counter totals saved by earlier runs."""
        with self._lock:
            return dict(self._db.execute("select name, value from counters").fetchall())

    def save_counters(self) -> None:
        """Save the in-memory counter totals."""
        with self._lock:
            self._db.executemany(
                "insert into counters (name, value) values (?, ?)"
                " on conflict (name) do update set value = excluded.value",
                list(self.counters.snapshot().items()))

    def get_state(self, key: str) -> object | None:
        """A JSON value saved under ``key`` (status, counter-wrap state ...), or None."""
        with self._lock:
            row = self._db.execute("select value from state where key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_state(self, key: str, value: object) -> None:
        """Save a JSON value under ``key``."""
        with self._lock:
            self._db.execute(
                "insert into state (key, value, updated) values (?, ?, ?) on conflict (key) do update"
                " set value = excluded.value, updated = excluded.updated", (key, json.dumps(value), time.time()))

    @property
    def bytes_used(self) -> int:
        """Bytes of readings counted against ``max_bytes``."""
        return self._bytes
