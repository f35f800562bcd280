"""Stable worker identities and no orphaned member of the ingest share group.

Every ``cityos ingest`` process is one *instance* with an ordinal (``CITYOS_INGEST_INSTANCE``, or
with ``auto`` the lowest ordinal no running instance holds); its N workers are the MQTT clients
``cityos-ingest-{instance}-{index}``. The ids contain neither the host name nor a container id, so a
re-created container (an image upgrade) that takes the same ordinal resumes the same persistent
sessions and the messages the broker queued for them.

An instance is alive while its process holds the PostgreSQL advisory lock ``(LOCK_CLASS, instance)``
on its own connection (a crashed process's lock goes with its connection). The registry
``core.ingest_sessions`` records every worker client id. A session is *orphaned* when its worker no
longer exists: its index is beyond the instance's current worker count (scaled down), or its
instance has not been alive for ``ORPHAN_AFTER_S``. Mosquitto keeps handing such a session its
share of the stream, so the platform drains it (resumes it, stores what it holds) and ends it
(:func:`cityos.ingest.worker.drain_session`): at start-up of ``cityos ingest`` and every
``SWEEP_INTERVAL_S`` after. An instance that stops while other instances stay leaves for good
(its workers end their sessions); the last one keeps its sessions, so messages queue while no
ingest runs. ``cityos status`` shows the registry (:func:`overview`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from cityos.platform.db.connection import connect, dedicated
from cityos.platform.db.scalar import scalar

log = logging.getLogger(__name__)

#: First key of the advisory locks of ingest instances ("city"); the second key is the ordinal.
LOCK_CLASS = 1667855481
#: Second key of the lock that serialises "am I the last instance?" decisions.
MEMBERSHIP_KEY = -1
MAX_INSTANCES = 64
#: Registry index of adopted pre-ordinal sessions (above any real worker index: orphaned at once).
MAX_WORKERS = 10_000
ORPHAN_AFTER_S = 60.0
HEARTBEAT_S = 10.0
SWEEP_INTERVAL_S = 30.0


class InstanceUnavailable(RuntimeError):
    """The wanted ordinal is held by another running instance, or none is free; the message says which."""


def worker_client_id(instance: int, index: int) -> str:
    """The MQTT client id of worker ``index`` of instance ``instance`` (stable across hosts and containers)."""
    return f"cityos-ingest-{instance}-{index}"


def public_feed_client_id(instance: int) -> str:
    """The public feed's client id: one per instance (it runs in instance 0 unless told otherwise)."""
    return f"cityos-public-feed-{instance}"


def parse_instance(value: str) -> int | None:
    """``CITYOS_INGEST_INSTANCE``: ``auto`` (None) or an ordinal 0..MAX_INSTANCES-1."""
    value = value.strip().lower()
    if value in ("", "auto"):
        return None
    if not value.isdigit() or int(value) >= MAX_INSTANCES:
        raise ValueError(f"CITYOS_INGEST_INSTANCE must be 'auto' or an ordinal 0..{MAX_INSTANCES - 1}, got {value!r}")
    return int(value)


def _try_lock(conn: psycopg.Connection, key: int) -> bool:
    return bool(scalar(conn.execute("select pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, key))))


def _unlock(conn: psycopg.Connection, key: int) -> None:
    conn.execute("select pg_advisory_unlock(%s, %s)", (LOCK_CLASS, key))


def live_instances(conn: psycopg.Connection) -> set[int]:
    """Ordinals whose lock some session holds in this database (running instances, or a drain in progress)."""
    rows = conn.execute(
        "select objid::int from pg_locks where locktype = 'advisory' and granted and classid = %s::oid"
        " and objsubid = 2 and database = (select oid from pg_database where datname = current_database())",
        (LOCK_CLASS,)).fetchall()
    return {r[0] for r in rows if 0 <= r[0] < MAX_INSTANCES}  # (not the membership lock, key -1)


class InstanceClaim:
    """This process's ordinal, held as an advisory lock on a connection of its own."""

    def __init__(self, database_url: str, wanted: int | None):
        self.database_url, self.wanted = database_url, wanted
        self.instance: int | None = None
        self.conn: psycopg.Connection | None = None

    def _connect(self) -> psycopg.Connection:
        # Not pooled: this session holds the instance's advisory lock for as long as the instance runs.
        return dedicated(self.database_url, autocommit=True, timeout=5, application_name="cityos-ingest-instance")

    def acquire(self, timeout: float = 30.0) -> int:
        """Take the wanted ordinal (waiting up to ``timeout`` for it), or the lowest free one with ``auto``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.conn = self.conn if self.conn and not self.conn.closed else self._connect()
                candidates = [self.wanted] if self.wanted is not None else range(MAX_INSTANCES)
                for n in candidates:
                    if _try_lock(self.conn, n):
                        self.instance = n
                        return n
                problem = (f"ingest instance {self.wanted} is held by another running `cityos ingest`"
                           if self.wanted is not None else f"all {MAX_INSTANCES} ingest instances are taken")
            except psycopg.OperationalError as exc:
                problem = f"database unavailable: {str(exc).strip()[:200]}"
                self.conn = None
            if time.monotonic() >= deadline:
                raise InstanceUnavailable(problem)
            time.sleep(0.5)

    def check(self) -> bool:
        """Still held? After a lost connection (database restart) the lock is taken again.

        Returns False while the database cannot be reached; raises :class:`InstanceUnavailable` if another
        process took the ordinal meanwhile (two processes must never run the same client ids).
        """
        assert self.instance is not None
        try:
            if self.conn is not None and not self.conn.closed:
                self.conn.execute("select 1")
                return True
        except psycopg.Error:
            pass
        try:
            self.conn = self._connect()
        except psycopg.OperationalError:
            self.conn = None
            return False
        if _try_lock(self.conn, self.instance):
            log.info("ingest instance lock taken again after a lost connection", extra={"instance": self.instance})
            return True
        raise InstanceUnavailable(f"ingest instance {self.instance} was taken by another process while the "
                                  "database connection was lost")

    def release(self) -> None:
        if self.conn is not None and not self.conn.closed:
            self.conn.close()
        self.conn = None


# -- the registry ---------------------------------------------------------------------------------------
def register(conn: psycopg.Connection, instance: int, workers: int, host: str) -> list[str]:
    """Record the client ids of this instance's workers (open, not leaving); returns them."""
    ids = [worker_client_id(instance, i) for i in range(workers)]
    with conn.transaction():
        for index, client_id in enumerate(ids):
            conn.execute(
                "insert into core.ingest_sessions (client_id, instance, worker_index, host) values (%s, %s, %s, %s)"
                " on conflict (client_id) do update set host = excluded.host, last_seen_at = now(), leaving = false,"
                " ended_at = null, end_reason = null", (client_id, instance, index, host))
    return ids


def legacy_client_ids(host: str, workers: int) -> list[str]:
    """The ids workers had before ordinals (``cityos-ingest-{host}-{index}``): sessions left by an upgrade."""
    return [f"cityos-ingest-{host}-{i}" for i in range(workers)]


def adopt_legacy(conn: psycopg.Connection, instance: int, host: str, workers: int) -> None:
    """On the first start after the upgrade to ordinals (the registry has no other session of this
    instance), register this host's pre-ordinal session ids as scaled-away workers of this instance, so
    the first sweep drains and ends them (Mosquitto cannot list sessions; the registry must know them)."""
    earlier = scalar(conn.execute("select count(*) from core.ingest_sessions where instance = %s"
                                  " and worker_index >= %s", (instance, workers)))
    if earlier or scalar(conn.execute("select count(*) from core.ingest_sessions where instance = %s"
                                      " and registered_at < now() - interval '1 minute'", (instance,))):
        return
    for i, client_id in enumerate(legacy_client_ids(host, workers)):
        conn.execute("insert into core.ingest_sessions (client_id, instance, worker_index, host)"
                     " values (%s, %s, %s, %s) on conflict (client_id) do nothing",
                     (client_id, instance, MAX_WORKERS + i, host))


def heartbeat(conn: psycopg.Connection, instance: int, workers: int) -> None:
    """Mark this instance's workers as seen now (shown by ``cityos status``)."""
    conn.execute("update core.ingest_sessions set last_seen_at = now()"
                 " where instance = %s and worker_index < %s and ended_at is null", (instance, workers))


@dataclass(frozen=True)
class Orphan:
    """A registered session whose worker no longer exists."""

    client_id: str
    instance: int
    reason: str  # "scaled_down" or "instance_gone"


def orphans(conn: psycopg.Connection, instance: int | None = None, workers: int = 0,
            after_s: float = ORPHAN_AFTER_S) -> list[Orphan]:
    """Open sessions of workers that no longer exist.

    ``instance``/``workers``: the caller's own instance and worker count (its indices from ``workers`` on
    are orphaned at once). Other instances' sessions are orphaned when the instance is not alive and
    was last seen more than ``after_s`` ago (a crashed instance restarted by its supervisor is back
    within that time and resumes its own sessions).
    """
    live = live_instances(conn)
    rows = conn.execute(
        "select client_id, instance, worker_index, extract(epoch from now() - last_seen_at), leaving"
        " from core.ingest_sessions where ended_at is null order by instance, worker_index").fetchall()
    found = []
    for client_id, inst, index, age, leaving in rows:
        if inst == instance:
            if index >= workers:
                found.append(Orphan(client_id, inst, "scaled_down"))
        elif inst not in live and (leaving or age > after_s):
            found.append(Orphan(client_id, inst, "instance_gone"))
    return found


def mark_ended(conn: psycopg.Connection, client_id: str, reason: str, drained: int) -> None:
    conn.execute("update core.ingest_sessions set ended_at = now(), end_reason = %s,"
                 " drained_messages = drained_messages + %s, leaving = false where client_id = %s",
                 (reason, drained, client_id))


def decide_leave(conn: psycopg.Connection, instance: int) -> bool:
    """Is this instance stopping for good? Yes while another instance stays (then mark ours leaving).

    Serialised by the membership lock, and instances already leaving do not count as staying, so of
    several instances stopping at once the last keeps its sessions (messages queue for it while no
    ingest runs) instead of all of them ending theirs.
    """
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, MEMBERSHIP_KEY))
        leaving = {r[0] for r in conn.execute(
            "select distinct instance from core.ingest_sessions where leaving and ended_at is null").fetchall()}
        staying = live_instances(conn) - {instance} - leaving
        if staying:
            conn.execute("update core.ingest_sessions set leaving = true where instance = %s and ended_at is null",
                         (instance,))
        return bool(staying)


def sweep(conn: psycopg.Connection, instance: int, workers: int,
          drain: Callable[[str], int | None], after_s: float = ORPHAN_AFTER_S) -> list[tuple[str, int]]:
    """Drain and end every orphaned session; ``(client_id, messages stored)`` for each one ended.

    An orphan of another instance is drained while holding that instance's lock, so the instance cannot
    start meanwhile (if it is already back and reconnects, it takes its session over and the drain gives
    up, leaving the session to it).
    """
    ended = []
    for orphan in orphans(conn, instance, workers, after_s):
        held = orphan.instance != instance
        if held and not _try_lock(conn, orphan.instance):
            continue  # it came back (or another sweeper is on it)
        try:
            drained = drain(orphan.client_id)
            if drained is not None:
                mark_ended(conn, orphan.client_id, orphan.reason, drained)
                ended.append((orphan.client_id, drained))
                log.info("orphaned ingest session drained and ended",
                         extra={"client_id": orphan.client_id, "reason": orphan.reason, "messages": drained})
        finally:
            if held:
                _unlock(conn, orphan.instance)
    return ended


class SessionKeeper(threading.Thread):
    """The ``cityos ingest`` process's background duty: keep the instance lock, heartbeat, sweep orphans."""

    def __init__(self, claim: InstanceClaim, workers: int, drain: Callable[[str], int | None],
                 on_lost: Callable[[str], None], sweep_interval_s: float = SWEEP_INTERVAL_S):
        super().__init__(name="ingest-sessions", daemon=True)
        self.claim, self.workers, self.drain, self.on_lost = claim, workers, drain, on_lost
        self.sweep_interval_s = sweep_interval_s
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        next_sweep = 0.0
        while not self._halt.is_set():
            try:
                if self.claim.check():
                    assert self.claim.conn is not None and self.claim.instance is not None
                    heartbeat(self.claim.conn, self.claim.instance, self.workers)
                    if time.monotonic() >= next_sweep:
                        sweep(self.claim.conn, self.claim.instance, self.workers, self.drain)
                        next_sweep = time.monotonic() + self.sweep_interval_s
            except InstanceUnavailable as exc:
                self.on_lost(str(exc))
                return
            except psycopg.Error as exc:
                log.warning("ingest session registry unavailable", extra={"error": str(exc).strip()[:200]})
                self.claim.release()
            except Exception:
                log.exception("ingest session keeper failed; retrying")
            _sleep(self._halt, HEARTBEAT_S)


def _sleep(stop: threading.Event, seconds: float) -> None:
    """Sleep in small steps (Event.wait never returns under libfaketime, see test_time_windows)."""
    deadline = time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < deadline:
        time.sleep(0.1)


def overview(database_url: str) -> dict[str, object]:
    """What ``cityos status`` shows of the ingest sessions: running instances, open sessions, orphans."""
    with connect(database_url, autocommit=True, timeout=3) as conn:
        if not scalar(conn.execute("select to_regclass('core.ingest_sessions')")):
            return {"error": "no session registry (run `cityos db migrate`)"}
        live = sorted(live_instances(conn))
        open_ids = [r[0] for r in conn.execute(
            "select client_id from core.ingest_sessions where ended_at is null order by instance, worker_index")]
        offline = [o.client_id for o in orphans(conn, None, 0, after_s=0)]
        ended = conn.execute("select count(*), coalesce(sum(drained_messages), 0) from core.ingest_sessions"
                             " where end_reason in ('scaled_down', 'instance_gone')").fetchone()
    # With no instance running, the sessions are parked on purpose (messages queue for the next start);
    # with one running, sessions of absent instances are orphans it drains and ends within a minute or so.
    return {"instances": live, "sessions": open_ids, "orphaned": offline if live else [],
            "parked": [] if live else offline,
            "orphans_ended": ended[0] if ended else 0, "orphan_messages_stored": int(ended[1]) if ended else 0}
