"""Notifications of NGSI-LD subscriptions, from readings the ingest writer has committed.

The writer's triggers (migration ``ngsild_subscriptions``) announce, per committed statement, which
attributes of which devices changed. One notifier in the whole deployment sends notifications (the API
process that holds a PostgreSQL advisory lock; another takes over when it stops): for each active,
unexpired subscription whose owner (token or API key) is still valid, the changed entities that match
its entities, ``watchedAttributes``, ``q`` and ``geoQ`` and that the owner may see are sent to its
endpoint over HTTP (POST) or MQTT (publish), at most once per ``throttling`` seconds (changes in between
are sent when the period ends). Sends run in a small pool of threads, so one slow endpoint delays no other
subscription; each is counted on its subscription when it ends (timesSent, lastSuccess, lastFailure ...).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urlsplit

import httpx
import psycopg
from psycopg.rows import dict_row

from cityos.ingest.ngsild.entities import Selection, iso, query, render
from cityos.ingest.ngsild.model import READ_SCOPE, VEHICLE_ATTRS
from cityos.ingest.ngsild.problems import NgsiError
from cityos.ingest.ngsild.subscriptions import check_endpoint
from cityos.ingest.ngsild.terms import CORE, CORE_CONTEXT_URL, link_header
from cityos.platform.db.connection import dedicated
from cityos.platform.db.scalar import scalar

log = logging.getLogger(__name__)

CHANNEL = "cityos_ngsild_changes"
LOCK_KEY = 0x4E47_5349  # "NGSI": one notifier per database
ALL = "*"
SEND_TIMEOUT_S = 5.0
SENDERS = 8  # notifications in flight at once


class Changes:
    """Changed (device, attribute) pairs since the last dispatch; ``everything`` after an overflow."""

    def __init__(self) -> None:
        self.pairs: set[tuple[str, str]] = set()
        self.everything = False

    def add(self, payload: str) -> None:
        try:
            items = json.loads(payload)
        except ValueError:
            items = ALL
        if items == ALL or not isinstance(items, list):
            self.everything = True
            return
        for item in items:
            device, _, attr = str(item).partition("/")
            self.pairs.add((device, attr))

    def __bool__(self) -> bool:
        return self.everything or bool(self.pairs)


def _owner_scopes(conn: psycopg.Connection, kind: str, owner_hash: str) -> frozenset[str] | None:
    """The owner's scopes now (an API key has none); None when the token or key is no longer valid."""
    if kind == "token":
        row = conn.execute("select scopes from core.api_tokens where token_hash = %s and revoked_at is null "
                           "and (expires_at is null or expires_at > now())", (owner_hash,)).fetchone()
        return frozenset(row[0]) if row else None
    row = conn.execute("select 1 from core.api_keys where key_hash = %s and revoked_at is null",
                       (owner_hash,)).fetchone()
    return frozenset() if row else None


def _watched(sub: dict, changes: Changes, since: datetime) -> tuple[str, dict] | None:
    """SQL condition (and its values): the entity has a changed attribute the subscription watches."""
    watched = sub["body"].get("watchedAttributes")
    if changes.everything:
        position = "e.pos_time > %(w_since)s" if not watched or set(watched) & {"location", *VEHICLE_ATTRS} \
            else "false"
        value = ("exists (select 1 from telemetry.latest_values lv where lv.device_id = e.device_id "
                 "and lv.time > %(w_since)s and (%(w_metrics)s::text[] is null or lv.metric = any(%(w_metrics)s)))")
        return f"({position} or {value})", {"w_since": since, "w_metrics": watched}
    devices = sorted({d for d, a in changes.pairs if not watched or a in watched
                      or (a == "location" and set(watched) & set(VEHICLE_ATTRS))})
    return ("e.device_id = any(%(w_devices)s::text[])", {"w_devices": devices}) if devices else None


def _send(http: httpx.Client, uri: str, accept: str, notification: dict) -> None:
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        headers = {"Content-Type": accept}
        if accept == "application/json":
            headers["Link"] = link_header()
        else:
            notification = {**notification, "@context": CORE_CONTEXT_URL}
        response = http.post(uri, content=json.dumps(notification), headers=headers)
        response.raise_for_status()
        return
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"cityos-ngsild-{uuid.uuid4().hex[:12]}",
                         protocol=mqtt.MQTTv5)
    if parts.username:
        client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
    if parts.scheme == "mqtts":
        client.tls_set()
    client.connect(parts.hostname or "", parts.port or (8883 if parts.scheme == "mqtts" else 1883), keepalive=10)
    client.loop_start()
    try:
        body = {"metadata": {"Content-Type": accept}, "body": notification}
        info = client.publish(parts.path.lstrip("/"), json.dumps(body), qos=1)
        info.wait_for_publish(SEND_TIMEOUT_S)
        if not info.is_published():
            raise TimeoutError("the MQTT broker did not acknowledge the notification")
    finally:
        client.disconnect()
        client.loop_stop()


class Notifier:
    """The deployment's notifier: a thread that holds the lock, listens and dispatches."""

    def __init__(self, database_url: str, private_hosts: set[str], audit_name: str = "ngsild-notifier") -> None:
        self.database_url = database_url
        self.private_hosts = private_hosts
        self.audit_name = audit_name
        self.leading = threading.Event()
        self._stop = threading.Event()
        self._pending: dict[str, Changes] = {}
        self._senders = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="ngsild-send")
        self._outcomes: queue.SimpleQueue = queue.SimpleQueue()
        # one client for every HTTP notification: its TLS context and connections are made once, not per send
        self._http = httpx.Client(timeout=SEND_TIMEOUT_S, follow_redirects=False,
                                  limits=httpx.Limits(max_connections=SENDERS))
        self._thread = threading.Thread(target=self._run, name="ngsild-notifier", daemon=True)

    def start(self) -> Notifier:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._senders.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._lead()
            except psycopg.Error as exc:
                log.warning("ngsi-ld notifier: database unavailable, retrying", extra={"error": str(exc)[:200]})
            except Exception:
                log.exception("ngsi-ld notifier failed, restarting")
            self.leading.clear()
            self._stop.wait(2.0)

    def _lead(self) -> None:
        # its own session: it holds the advisory lock and LISTENs as long as it leads
        with dedicated(self.database_url, autocommit=True, timeout=5, application_name="ngsild-notifier") as conn:
            if not scalar(conn.execute("select pg_try_advisory_lock(%s)", (LOCK_KEY,))):
                return  # another process notifies; try again later (it may stop)
            conn.execute(f"listen {CHANNEL}")
            self.leading.set()
            while not self._stop.is_set():
                changes = Changes()
                for note in conn.notifies(timeout=0.2, stop_after=1):
                    changes.add(note.payload)
                if changes:
                    deadline = time.monotonic() + 0.05  # gather the burst of one batch
                    for note in conn.notifies(timeout=max(0.0, deadline - time.monotonic())):
                        changes.add(note.payload)
                self.dispatch(conn, changes)
                self._record_outcomes(conn)

    def dispatch(self, conn: psycopg.Connection, changes: Changes) -> None:
        """Notify every subscription that ``changes`` (or a throttled earlier change now due) concerns."""
        if not changes and not self._pending:
            return
        subs = conn.cursor(row_factory=dict_row).execute(
            "select * from core.ngsild_subscriptions where active and (expires_at is null or expires_at > now())"
        ).fetchall()
        now = datetime.now(UTC)
        for sub in subs:
            due = self._pending.pop(sub["id"], None)
            merged = Changes()
            for part in (changes, due):
                if part:
                    merged.pairs |= part.pairs
                    merged.everything |= part.everything
            if not merged:
                continue
            last = sub["last_notification"]
            if last and sub["throttling"] and now < last + timedelta(seconds=sub["throttling"]):
                self._pending[sub["id"]] = merged
                continue
            try:
                self._notify(conn, sub, merged, now)
            except Exception:
                log.exception("ngsi-ld notification failed", extra={"subscription": sub["id"]})

    def _notify(self, conn: psycopg.Connection, sub: dict, changes: Changes, now: datetime) -> None:
        scopes = _owner_scopes(conn, sub["owner_kind"], sub["owner_hash"])
        if scopes is None:
            return  # the token or key was revoked: nothing more is sent
        staff = "admin" in scopes or READ_SCOPE in scopes
        since = sub["last_notification"] or sub["created_at"]
        watched = _watched(sub, changes, since)
        if watched is None:
            return
        body = sub["body"]
        notification = body["notification"]
        entities: dict[str, tuple[dict, dict]] = {}
        for item in body.get("entities") or [{}]:
            sel = Selection(types=[item["type"]] if item.get("type") else None,
                            ids=[item["id"]] if item.get("id") else None, id_pattern=item.get("idPattern"),
                            q=body.get("q"), **_geo(body.get("geoQ")))
            sel.extra.append(watched)
            rows, _ = query(conn, sel, staff=staff, limit=1000, offset=0, count=False)
            fmt = notification.get("format", "normalized")
            for row in rows:
                entity = render(row, CORE, attrs=notification.get("attributes"), key_values=fmt == "keyValues",
                                concise=fmt == "concise")
                entities[entity["id"]] = (entity, row)
        if not entities:
            return
        message = {"id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}", "type": "Notification",
                   "subscriptionId": sub["id"], "notifiedAt": iso(now),
                   "data": [entity for entity, _ in entities.values()]}
        personal = [row["device_id"] for _, row in entities.values() if row["domain"] in ("hems", "health")]
        conn.execute("update core.ngsild_subscriptions set last_notification = %s where id = %s", (now, sub["id"]))
        self._senders.submit(self._deliver, sub["id"], sub["endpoint"],
                             notification["endpoint"].get("accept", "application/json"), message, now)
        if personal:
            from cityos.platform.audit import Who, record

            record(conn, Who(self.audit_name, "job"), "ngsild notification", sub["endpoint"][:200],
                   subject=",".join(personal[:50]), reason="a staff subscription's notification",
                   detail={"subscription": sub["id"], "entities": len(personal)})


    def _deliver(self, sub_id: str, endpoint: str, accept: str, message: dict, now: datetime) -> None:
        """Send one notification (in a sender thread: a slow endpoint delays nobody else)."""
        ok = True
        try:
            check_endpoint(endpoint, self.private_hosts)
            _send(self._http, endpoint, accept, message)
        except (NgsiError, httpx.HTTPError, OSError, TimeoutError, ValueError) as exc:
            ok = False
            log.warning("ngsi-ld notification not delivered", extra={"subscription": sub_id, "error": str(exc)[:200]})
        self._outcomes.put((sub_id, ok, now))

    def _record_outcomes(self, conn: psycopg.Connection) -> None:
        """Count the sends that finished on their subscriptions (timesSent, lastSuccess, lastFailure ...)."""
        while True:
            try:
                sub_id, ok, now = self._outcomes.get_nowait()
            except queue.Empty:
                return
            conn.execute("update core.ngsild_subscriptions set times_sent = times_sent + 1, "
                         "last_success = case when %s then %s else last_success end, "
                         "last_failure = case when %s then last_failure else %s end, "
                         "times_failed = times_failed + case when %s then 0 else 1 end where id = %s",
                         (ok, now, ok, now, ok, sub_id))


def _geo(geo: dict | None) -> dict:
    if not geo:
        return {}
    return {"georel": geo["georel"], "geometry": geo["geometry"], "coordinates": geo["coordinates"]}


def start(settings, loop) -> Notifier | None:
    """Start this process's notifier candidate (None without a database)."""
    del loop
    if not settings.database_url:
        return None
    hosts = {h.strip() for h in settings.ngsild_notify_private_hosts.split(",") if h.strip()}
    return Notifier(settings.database_url, hosts).start()
