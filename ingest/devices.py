"""The device registry: who may publish telemetry, with which MQTT credentials.

Adding a device creates its broker account (password shown once, stored only as a Mosquitto
hash) through the dynamic security plugin's control API, in the same transaction as the registry
row; revoking it deletes the account, which disconnects the device at once, and the ingest workers
refuse its messages from then on (``revoked_device``). A stopped local broker gets its plugin file
regenerated from the registry instead.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from cityos.ingest.broker_auth import (
    CONFIG_NAME,
    PUBLIC_USER,
    SERVICE_USER,
    DeviceCredential,
    mosquitto_hash,
    render_config,
    write_config,
)
from cityos.ingest.dynsec import DynsecControl, Reconciled, put_devices, reconcile, remove_device
from cityos.platform.auth import hash_token
from cityos.platform.settings import Settings

log = logging.getLogger(__name__)

DEVICE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{2,63}$")
DOMAINS = ("hems", "vehicle", "health", "env")


#: Advisory lock key held while the broker's accounts change ("cityos-broker").
BROKER_LOCK = 0x63697479_62726B


class DeviceError(ValueError):
    """A device operation was refused; the message says why."""


@dataclass(frozen=True)
class BrokerTarget:
    """The broker whose accounts follow the registry: its service URL, and locally its plugin file and pid file.

    While the broker runs, changes go through its control API (effective at once, no restart). When
    this host runs the broker and it is stopped (first start, ``cityos down``), the plugin's file is
    written instead and read when it starts.
    """

    service_url: str
    folder: Path | None = None
    pidfile: Path | None = None

    @property
    def service_password(self) -> str:
        from cityos.platform.mqtt import BrokerAddress

        return BrokerAddress.parse(self.service_url).password or ""

    @property
    def config_file(self) -> Path:
        if self.folder is None:
            raise DeviceError("no local broker folder configured (CITYOS_BROKER_AUTH_DIR)")
        return self.folder / CONFIG_NAME

    def running_here(self) -> bool:
        """Whether the pid file names a live process."""
        try:
            os.kill(int(self.pidfile.read_text().split()[0]), 0)  # type: ignore[union-attr]
        except (AttributeError, OSError, ValueError, IndexError):
            return False
        return True

    def use_file(self) -> bool:
        """Write the plugin's file (a local broker, stopped) rather than use the control API."""
        return self.folder is not None and self.folder.is_dir() and not self.running_here()


@dataclass(frozen=True)
class NewDevice:
    """A device just added, with the password shown this once."""

    device_id: str
    domain: str
    mqtt_username: str
    mqtt_password: str


def broker_target(settings: Settings) -> BrokerTarget:
    """Where device accounts go, from the settings (the local runtime's broker by default)."""
    home = Path(settings.home)
    return BrokerTarget(settings.mqtt_url, settings.broker_auth_dir or home / "broker",
                        settings.broker_pidfile or home / "run" / "mosquitto.pid")


def service_hash(password: str) -> str:
    """A stable hash of the service password (salt derived from it, so regenerated files are identical)."""
    return mosquitto_hash(password, salt=hash_token("cityos-service:" + password).encode()[:12])


def _active(conn: psycopg.Connection) -> list[DeviceCredential]:
    rows = conn.execute("select device_id, domain, mqtt_password_hash from core.devices "
                        "where revoked_at is null and mqtt_password_hash is not null order by device_id").fetchall()
    return [DeviceCredential(*r) for r in rows]


def _lock(conn: psycopg.Connection) -> None:
    """Serialise broker changes (a reconciliation must not delete an account another request is creating)."""
    conn.execute("select pg_advisory_xact_lock(%s)", (BROKER_LOCK,))


def write_broker_config(conn: psycopg.Connection, target: BrokerTarget) -> int:
    """Regenerate the stopped broker's plugin file from the registry; active devices written."""
    devices = _active(conn)
    write_config(target.config_file, render_config(service_hash(target.service_password), devices))
    return len(devices)


def sync_broker(conn: psycopg.Connection, target: BrokerTarget) -> Reconciled:
    """Make the broker's accounts match the registry (idempotent).

    Broker stopped here: its plugin file is regenerated (it starts with exactly the registry). Broker
    running: revoked devices' accounts are deleted and every role set over the control API; an active
    device the broker lacks is reported in ``missing`` (see :func:`cityos.ingest.dynsec.reconcile`).
    """
    with conn.transaction():
        _lock(conn)
        if target.use_file():
            write_broker_config(conn, target)
            return Reconciled()
        devices = {d.device_id: d.domain for d in _active(conn)}
        with DynsecControl(target.service_url) as control:
            result = reconcile(control, devices)
    if result.missing:
        log.warning("active devices without a broker account (rotate their passwords to restore them)",
                    extra={"devices": result.missing[:20], "count": len(result.missing)})
    return result


def provision(conn: psycopg.Connection, target: BrokerTarget, *new: NewDevice) -> None:
    """Give each of ``new`` (just added, rotated or enrolled, password in hand) its broker account now.

    Call inside the transaction that changed the registry: if the broker refuses, the change is
    rolled back with it, so registry and broker never disagree about a device's password.
    """
    _lock(conn)
    if target.use_file():
        write_broker_config(conn, target)
        return
    with DynsecControl(target.service_url) as control:
        put_devices(control, [(n.device_id, n.domain, n.mqtt_password) for n in new])


def deprovision(conn: psycopg.Connection, target: BrokerTarget, device_id: str) -> None:
    """Delete a revoked device's broker account now (its open sessions are disconnected)."""
    _lock(conn)
    if target.use_file():
        write_broker_config(conn, target)
        return
    with DynsecControl(target.service_url) as control:
        remove_device(control, device_id)


def add_device(conn: psycopg.Connection, device_id: str, domain: str, *, kind: str = "",
               owner_subject: str | None = None, district_code: str | None = None, public: bool = False,
               display_name: str = "", metadata: dict | None = None) -> NewDevice:
    """Register a device with a new broker password (then :func:`provision` it, in the same transaction)."""
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
