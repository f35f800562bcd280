"""NGSI-LD subscriptions: validated, stored per owner (a staff token or a developer's API key).

A subscription names the entities it watches (``entities`` with ``type``, ``id`` or ``idPattern``),
optionally ``watchedAttributes``, ``q`` and ``geoQ``, and a notification endpoint (``http(s)://`` or
``mqtt(s)://host:port/topic``) with the attributes and format to send. Endpoints are checked against
server-side request forgery: an address inside the platform's networks (loopback, private, link-local)
is refused unless the operator lists the host in ``CITYOS_NGSILD_NOTIFY_PRIVATE_HOSTS``; the check is
made again on every send (DNS may change).
"""

from __future__ import annotations

import ipaddress
import socket
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from cityos.ingest.ngsild.entities import iso
from cityos.ingest.ngsild.problems import NgsiError
from cityos.ingest.ngsild.query import geometry_json, parse_q
from cityos.ingest.ngsild.terms import Context
from cityos.platform.db.scalar import scalar

MAX_PER_OWNER = 100
SCHEMES = {"http", "https", "mqtt", "mqtts"}
FORMATS = {"normalized", "keyValues", "concise"}
_EDITABLE = {"subscriptionName", "description", "entities", "watchedAttributes", "q", "geoQ", "notification",
             "throttling", "expiresAt", "isActive"}


def check_endpoint(uri: object, private_hosts: set[str]) -> str:
    """``uri`` if it is an endpoint notifications may go to (``BadRequestData`` otherwise)."""
    if not isinstance(uri, str) or len(uri) > 2000:
        raise NgsiError("BadRequestData", "notification.endpoint.uri is a URL of at most 2000 characters")
    parts = urlsplit(uri)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise NgsiError("BadRequestData", "notification.endpoint.uri: http(s)://host/... or mqtt(s)://host:port/topic")
    if parts.scheme.startswith("mqtt") and len(parts.path) < 2:
        raise NgsiError("BadRequestData", "an MQTT endpoint names its topic: mqtt://host:port/topic")
    host = parts.hostname
    if host in private_hosts:
        return uri
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, parts.port or 80, proto=socket.IPPROTO_TCP)}
    except (socket.gaierror, UnicodeError) as exc:
        raise NgsiError("BadRequestData", f"notification.endpoint.uri: the host {host} cannot be resolved") from exc
    for address in addresses:
        ip = ipaddress.ip_address(str(address).split("%")[0])
        if not ip.is_global:
            raise NgsiError("BadRequestData", f"notification.endpoint.uri: {host} is an address inside the "
                                              "platform's networks; notifications go to public addresses only")
    return uri


def _entities(value: object, ctx: Context) -> list[dict]:
    if not isinstance(value, list) or not value or len(value) > 100:
        raise NgsiError("BadRequestData", "entities: a list of 1 to 100 {type, id | idPattern}")
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise NgsiError("BadRequestData", "every entities item names its type")
        entry = {"type": ctx.compact(ctx.expand(item["type"]))}
        for key in ("id", "idPattern"):
            if key in item:
                if not isinstance(item[key], str) or len(item[key]) > 256:
                    raise NgsiError("BadRequestData", f"entities.{key} is a string of at most 256 characters")
                entry[key] = item[key]
        out.append(entry)
    return out


def _names(value: object, ctx: Context, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(value) > 100:
        raise NgsiError("BadRequestData", f"{what} is a list of attribute names")
    return [ctx.compact(ctx.expand(v)) for v in value]


def normalise(body: dict, ctx: Context, private_hosts: set[str], *, partial: bool = False) -> dict:
    """The subscription (or, with ``partial``, the changed members) checked and in short names."""
    if not isinstance(body, dict):
        raise NgsiError("BadRequestData", "a subscription is a JSON object")
    if not partial and body.get("type") != "Subscription":
        raise NgsiError("BadRequestData", 'a subscription has "type": "Subscription"')
    out: dict = {}
    if "entities" in body or not partial:
        if "entities" not in body and "watchedAttributes" not in body:
            raise NgsiError("BadRequestData", "a subscription names entities or watchedAttributes")
        if "entities" in body:
            out["entities"] = _entities(body["entities"], ctx)
    if "watchedAttributes" in body:
        out["watchedAttributes"] = _names(body["watchedAttributes"], ctx, "watchedAttributes")
    if "q" in body:
        if not isinstance(body["q"], str):
            raise NgsiError("BadRequestData", "q is a string")
        parse_q(body["q"])
        out["q"] = body["q"]
    if "geoQ" in body:
        geo = body["geoQ"]
        if not isinstance(geo, dict) or not {"georel", "geometry", "coordinates"} <= set(geo):
            raise NgsiError("BadRequestData", "geoQ has georel, geometry and coordinates")
        geometry_json(str(geo["geometry"]), geo["coordinates"])
        out["geoQ"] = {k: geo[k] for k in ("georel", "geometry", "coordinates")}
    if "notification" in body or not partial:
        out["notification"] = _notification(body.get("notification"), ctx, private_hosts)
    if "throttling" in body:
        if not isinstance(body["throttling"], (int, float)) or isinstance(body["throttling"], bool) \
                or not 0 <= body["throttling"] <= 86_400:
            raise NgsiError("BadRequestData", "throttling is a number of seconds (0 to 86400)")
        out["throttling"] = body["throttling"]
    if "expiresAt" in body:
        try:
            expires = datetime.fromisoformat(str(body["expiresAt"]).replace("z", "Z"))
        except ValueError as exc:
            raise NgsiError("BadRequestData", "expiresAt is a date-time") from exc
        if expires.tzinfo is None:
            raise NgsiError("BadRequestData", "expiresAt needs a UTC offset or Z")
        out["expiresAt"] = iso(expires)
    if "isActive" in body:
        if not isinstance(body["isActive"], bool):
            raise NgsiError("BadRequestData", "isActive is true or false")
        out["isActive"] = body["isActive"]
    for key in ("subscriptionName", "description"):
        if key in body:
            if not isinstance(body[key], str) or len(body[key]) > 500:
                raise NgsiError("BadRequestData", f"{key} is a string of at most 500 characters")
            out[key] = body[key]
    unknown = set(body) - _EDITABLE - {"id", "type", "@context"}
    if unknown:
        raise NgsiError("BadRequestData", f"unsupported subscription members: {', '.join(sorted(unknown))}")
    return out


def _notification(value: object, ctx: Context, private_hosts: set[str]) -> dict:
    if not isinstance(value, dict) or not isinstance(value.get("endpoint"), dict):
        raise NgsiError("BadRequestData", "notification has an endpoint {uri, accept}")
    endpoint = value["endpoint"]
    accept = endpoint.get("accept", "application/json")
    if accept not in ("application/json", "application/ld+json"):
        raise NgsiError("BadRequestData", "notification.endpoint.accept is application/json or application/ld+json")
    fmt = value.get("format", "normalized")
    if fmt not in FORMATS:
        raise NgsiError("BadRequestData", f"notification.format is one of {', '.join(sorted(FORMATS))}")
    out = {"endpoint": {"uri": check_endpoint(endpoint.get("uri"), private_hosts), "accept": accept},
           "format": fmt}
    if "attributes" in value:
        out["attributes"] = _names(value["attributes"], ctx, "notification.attributes")
    return out


def create(conn: psycopg.Connection, body: dict, owner: tuple[str, str]) -> str:
    """Store a normalised subscription for ``owner`` (kind, hash); its id."""
    count = scalar(conn.execute("select count(*) from core.ngsild_subscriptions where owner_kind = %s "
                                "and owner_hash = %s", owner))
    if count >= MAX_PER_OWNER:
        raise NgsiError("BadRequestData", f"at most {MAX_PER_OWNER} subscriptions per token or API key")
    sub_id = f"urn:ngsi-ld:Subscription:{uuid.uuid4()}"
    try:
        conn.execute("insert into core.ngsild_subscriptions (id, owner_kind, owner_hash, body, endpoint, throttling, "
                     "expires_at, active) values (%s, %s, %s, %s, %s, %s, %s, %s)",
                     (sub_id, *owner, Jsonb(body), body["notification"]["endpoint"]["uri"],
                      body.get("throttling", 0), body.get("expiresAt"), body.get("isActive", True)))
    except psycopg.errors.UniqueViolation as exc:  # pragma: no cover - uuid4
        raise NgsiError("AlreadyExists", sub_id) from exc
    return sub_id


def _owned(conn: psycopg.Connection, sub_id: str, owner: tuple[str, str]) -> dict:
    row = conn.cursor(row_factory=dict_row).execute(
        "select * from core.ngsild_subscriptions where id = %s and owner_kind = %s and owner_hash = %s",
        (sub_id, *owner)).fetchone()
    if row is None:  # someone else's subscription is not found either: its existence is not disclosed
        raise NgsiError("ResourceNotFound", f"no subscription {sub_id[:200]} of yours")
    return row


def render(row: dict) -> dict:
    """A stored subscription as the standard shows it, with its notification status."""
    body = dict(row["body"])
    notification = dict(body.get("notification", {}))
    for key, column in (("lastNotification", "last_notification"), ("lastSuccess", "last_success"),
                        ("lastFailure", "last_failure")):
        if row[column] is not None:
            notification[key] = iso(row[column])
    notification["timesSent"] = row["times_sent"]
    notification["timesFailed"] = row["times_failed"]
    expired = row["expires_at"] is not None and row["expires_at"] <= datetime.now(UTC)
    status = "expired" if expired else "active" if row["active"] else "paused"
    return {"id": row["id"], "type": "Subscription", **body, "notification": notification,
            "isActive": row["active"], "status": status,
            **({"expiresAt": iso(row["expires_at"])} if row["expires_at"] else {}),
            "createdAt": iso(row["created_at"]), "modifiedAt": iso(row["modified_at"])}


def get(conn: psycopg.Connection, sub_id: str, owner: tuple[str, str]) -> dict:
    """One of the owner's subscriptions."""
    return render(_owned(conn, sub_id, owner))


def list_owned(conn: psycopg.Connection, owner: tuple[str, str], limit: int, offset: int) -> list[dict]:
    """The owner's subscriptions, oldest first."""
    rows = conn.cursor(row_factory=dict_row).execute(
        "select * from core.ngsild_subscriptions where owner_kind = %s and owner_hash = %s "
        "order by created_at, id limit %s offset %s", (*owner, limit, offset)).fetchall()
    return [render(r) for r in rows]


def update(conn: psycopg.Connection, sub_id: str, owner: tuple[str, str], changes: dict) -> None:
    """Apply normalised ``changes`` to one of the owner's subscriptions."""
    row = _owned(conn, sub_id, owner)
    body = {**row["body"], **{k: v for k, v in changes.items() if k not in ("isActive",)}}
    conn.execute("update core.ngsild_subscriptions set body = %s, endpoint = %s, throttling = %s, expires_at = %s, "
                 "active = %s, modified_at = now() where id = %s",
                 (Jsonb(body), body["notification"]["endpoint"]["uri"], body.get("throttling", 0),
                  body.get("expiresAt"), changes.get("isActive", row["active"]), sub_id))


def delete(conn: psycopg.Connection, sub_id: str, owner: tuple[str, str]) -> None:
    """Delete one of the owner's subscriptions."""
    _owned(conn, sub_id, owner)
    conn.execute("delete from core.ngsild_subscriptions where id = %s", (sub_id,))
