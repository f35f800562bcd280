"""The device registry: who may publish telemetry, with which MQTT credentials.

Adding a device creates its broker user (password shown once, stored only as a Mosquitto
hash); revoking it removes the user and its ACL entry and reloads the broker, and the ingest
workers refuse its messages from then on (``revoked_device``).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from cityos.ingest.broker_auth import PUBLIC_USER, SERVICE_USER, BrokerFiles, DeviceCredential, mosquitto_hash
from cityos.platform.auth import hash_token
from cityos.platform.settings import Settings

DEVICE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{2,63}$")
DOMAINS = ("hems", "vehicle", "health", "env")


class DeviceError(ValueError):
    """A device operation was refused; the message says why."""


@dataclass(frozen=True)
class NewDevice:
    """A device just added, with the password shown this once."""

    device_id: str
    domain: str
    mqtt_username: str
    mqtt_password: str


def broker_files(settings: Settings) -> BrokerFiles:
    """The broker's credential files named by the settings (the local runtime's by default)."""
    home = Path(settings.home)
    return BrokerFiles(settings.broker_auth_dir or home / "broker",
                       settings.broker_pidfile or home / "run" / "mosquitto.pid")


def service_hash(password: str) -> str:
    """A stable hash of the service password (salt derived from it, so regenerated files are identical)."""
    return mosquitto_hash(password, salt=hash_token("cityos-service:" + password).encode()[:12])


def sync_broker(conn: psycopg.Connection, files: BrokerFiles, service_password: str) -> int:
    """Regenerate the broker's files from the registry and reload it; active devices written."""
    rows = conn.execute("select device_id, domain, mqtt_password_hash from core.devices "
                        "where revoked_at is null and mqtt_password_hash is not null").fetchall()
    if files.write(service_hash(service_password), [DeviceCredential(*r) for r in rows]):
        files.reload()
    return len(rows)


def add_device(conn: psycopg.Connection, device_id: str, domain: str, *, kind: str = "",
               owner_subject: str | None = None, district_code: str | None = None, public: bool = False,
               display_name: str = "", metadata: dict | None = None) -> NewDevice:
    """Register a device and create its broker credentials (call :func:`sync_broker` afterwards)."""
    if not DEVICE_ID.match(device_id):
        raise DeviceError(f"device id {device_id!r} must match {DEVICE_ID.pattern}")
    if device_id in (PUBLIC_USER, SERVICE_USER):
        raise DeviceError(f"device id {device_id!r} is reserved for a broker account of the platform")
    if domain not in DOMAINS:
        raise DeviceError(f"domain must be one of {', '.join(DOMAINS)}")
    if public and domain not in ("vehicle", "env"):
        raise DeviceError("only city vehicles and environment sensors may be public; household and health "
                          "devices never are")
    if domain == "health" and not owner_subject:
        raise DeviceError("a health device needs the owner's subject id (consent is checked per owner)")
    password = secrets.token_urlsafe(24)
    try:
        conn.execute(
            "insert into core.devices (device_id, domain, kind, owner_subject, district_code, public, display_name,"
            " mqtt_password_hash, metadata) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (device_id, domain, kind, owner_subject, district_code, public, display_name,
             mosquitto_hash(password), Jsonb(metadata or {})))
    except psycopg.errors.UniqueViolation as exc:
        raise DeviceError(f"device {device_id} already exists") from exc
    return NewDevice(device_id, domain, device_id, password)


def rotate_password(conn: psycopg.Connection, device_id: str) -> NewDevice:
    """Give an active device a new broker password (the old one stops working at the next sync)."""
    password = secrets.token_urlsafe(24)
    row = conn.execute("update core.devices set mqtt_password_hash = %s where device_id = %s and revoked_at is null "
                       "returning domain", (mosquitto_hash(password), device_id)).fetchone()
    if row is None:
        raise DeviceError(f"no active device {device_id}")
    return NewDevice(device_id, row[0], device_id, password)


def revoke_device(conn: psycopg.Connection, device_id: str) -> None:
    """Revoke a device: its credentials stop working and its messages are refused."""
    row = conn.execute("update core.devices set revoked_at = now(), mqtt_password_hash = null "
                       "where device_id = %s and revoked_at is null returning device_id", (device_id,)).fetchone()
    if row is None:
        raise DeviceError(f"no active device {device_id}")


def list_devices(conn: psycopg.Connection, *, domain: str | None = None, include_revoked: bool = False) -> list[dict]:
    """Registered devices (never their password hashes)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select device_id, domain, kind, owner_subject, district_code, public, display_name, created_at,"
            " revoked_at from core.devices where (%(domain)s::text is null or domain = %(domain)s)"
            " and (%(all)s or revoked_at is null) order by device_id",
            {"domain": domain, "all": include_revoked})
        return cur.fetchall()


def create_enrolment_token(conn: psycopg.Connection, device_id: str, valid_for: timedelta = timedelta(days=7)) -> str:
    """A one-time token with which a gateway fetches its credentials (``cityos gateway enroll``)."""
    token = "enr_" + secrets.token_urlsafe(24)
    conn.execute("insert into core.enrolment_tokens (token_hash, device_id, expires_at) values (%s, %s, %s)",
                 (hash_token(token), device_id, datetime.now(UTC) + valid_for))
    return token


def redeem_enrolment_token(conn: psycopg.Connection, token: str) -> NewDevice:
    """Exchange a valid, unused enrolment token for fresh device credentials (once)."""
    row = conn.execute(
        "update core.enrolment_tokens set used_at = now() where token_hash = %s and used_at is null "
        "and expires_at > now() returning device_id", (hash_token(token),)).fetchone()
    if row is None:
        raise DeviceError("enrolment token is unknown, used or expired")
    return rotate_password(conn, row[0])
