"""Broker accounts and their rights, as Mosquitto's dynamic security plugin holds them.

Three kinds of account, each with its own role; everything not granted is refused, and a refused
SUBSCRIBE gets a failure reason code in its SUBACK (the plugin checks subscriptions when they are
made, not only at delivery, so nobody can join the ingest share group and silently take messages):

- ``cityos-service`` (the platform's services): publishes and reads ``cityos/#``; the only account
  that may join the ingest share group ``$share/cityos-ingest/cityos/v1/#``; administers the
  plugin over ``$CONTROL/dynamic-security/v1``; reads ``$SYS/#``.
- ``public`` (citizen developers, password ``public``): subscribes to ``cityos/public/#`` only;
  publishes nothing.
- each device (user name = device id): publishes only its own stream topics
  ``cityos/v1/{domain}/{device_id}/{stream}``, one per format its domain offers; subscribes only to its
  own confirmation topic ``cityos/confirm/v1/{device_id}`` and its own command topic
  ``cityos/command/v1/{device_id}/resend`` (literal, no wildcard); only the service account publishes
  commands (it publishes ``cityos/#``).

This module is pure (standard library only): it renders roles and the plugin's configuration file.
:mod:`cityos.ingest.dynsec` applies them to a running broker; :mod:`cityos.ingest.devices` decides which.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SERVICE_USER = "cityos-service"
#: The read-only account of citizen developers (documented; may read cityos/public/# only).
PUBLIC_USER, PUBLIC_PASSWORD = "public", "public"
#: The share group of the ingest workers; only the service account may join it.
INGEST_GROUP = "cityos-ingest"
PBKDF2_ITERATIONS = 101  # Mosquitto's own default for $7$ hashes and for the plugin's clients
SALT_BYTES = 12  # the plugin keeps exactly 12 bytes of salt per client
CONFIG_NAME = "dynamic-security.json"
#: The SensorThings MQTT extension's tree (cityos.sta.mqtt): public devices' observations and locations.
STA_TREE = "v1.1/#"
SERVICE_ROLE, PUBLIC_ROLE, DEVICE_ROLE_PREFIX = "cityos-service", "cityos-public", "device-"
#: The ingest gate: a role every device holds above its own. Closed (deny publishing ``cityos/v1/#``)
#: whenever the broker starts; an ingest worker opens it (removes the rule) once its subscription to the
#: share group is granted. Mosquitto does not restore shared subscriptions after a restart, so without
#: the gate a device's message would be acknowledged and dropped; with it an MQTT 5 device gets
#: "not authorized" and keeps the message.
GATE_ROLE, GATE_PRIORITY, GATED_TOPIC = "cityos-ingest-gate", 10, "cityos/v1/#"

PUBLISH, RECEIVE = "publishClientSend", "publishClientReceive"
SUBSCRIBE, UNSUBSCRIBE = "subscribePattern", "unsubscribePattern"
#: Deny by default: only what a role grants is allowed (unsubscribing is harmless).
DEFAULT_ACCESS = {PUBLISH: False, RECEIVE: False, "subscribe": False, "unsubscribe": True}


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    """The ``$7$`` (PBKDF2-SHA512) hash of Mosquitto's password files; the registry stores this form."""
    salt = salt or secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    return f"$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def plugin_password(stored_hash: str) -> dict:
    """A ``$7$`` hash as the plugin's client fields (``password``, ``salt``, ``iterations``)."""
    parts = stored_hash.split("$")
    if len(parts) != 5 or parts[1] != "7":
        raise ValueError("not a $7$ (PBKDF2-SHA512) password hash")
    iterations, salt, digest = int(parts[2]), parts[3], parts[4]
    if len(base64.b64decode(salt)) != SALT_BYTES or len(base64.b64decode(digest)) != 64:
        raise ValueError("the plugin needs a 12-byte salt and a 64-byte SHA-512 digest")
    return {"password": digest, "salt": salt, "iterations": iterations}


def public_hash() -> str:
    """The public account's hash (its password is public: a fixed salt keeps the file stable)."""
    return mosquitto_hash(PUBLIC_PASSWORD, salt=hashlib.sha256(b"cityos-public-account").digest()[:SALT_BYTES])


@dataclass(frozen=True, order=True)
class Acl:
    """One access rule of a role (the plugin's ``acltype``, topic filter, allow)."""

    acltype: str
    topic: str
    allow: bool = True

    def as_json(self) -> dict:
        return {"acltype": self.acltype, "topic": self.topic, "allow": self.allow, "priority": 0}


@dataclass(frozen=True)
class Role:
    """A named set of rules."""

    name: str
    acls: tuple[Acl, ...]

    def as_json(self) -> dict:
        return {"rolename": self.name, "acls": [a.as_json() for a in self.acls]}


def _reads(*filters: str) -> tuple[Acl, ...]:
    """Subscribe and receive rights for the same filters (so nothing granted at SUBSCRIBE is dropped later)."""
    return tuple(a for f in filters for a in (Acl(SUBSCRIBE, f), Acl(RECEIVE, f)))


def service_role() -> Role:
    """The platform's services: the whole cityos tree, the ingest share group, the plugin's API, $SYS."""
    control = "$CONTROL/dynamic-security/#"
    return Role(SERVICE_ROLE, (
        Acl(PUBLISH, "cityos/#"), Acl(PUBLISH, control), Acl(PUBLISH, STA_TREE),
        *_reads("cityos/#", control, "$SYS/#", STA_TREE),
        Acl(SUBSCRIBE, f"$share/{INGEST_GROUP}/cityos/v1/#"),
    ))


def public_role() -> Role:
    """Citizen developers: read the public tree, nothing else."""
    return Role(PUBLIC_ROLE, _reads("cityos/public/#", STA_TREE))


def gate_role(closed: bool = True) -> Role:
    """The ingest gate (see :data:`GATE_ROLE`): closed it denies devices' publishing; open it holds no rule."""
    return Role(GATE_ROLE, (Acl(PUBLISH, GATED_TOPIC, allow=False),) if closed else ())


def close_gate(config: dict) -> dict:
    """The plugin's file ``config`` with the ingest gate closed (before the broker starts)."""
    roles = [r for r in config.get("roles", []) if r.get("rolename") != GATE_ROLE]
    return {**config, "roles": [*roles, gate_role(closed=True).as_json()]}


def device_role_name(device_id: str) -> str:
    return f"{DEVICE_ROLE_PREFIX}{device_id}"


def device_streams(domain: str) -> tuple[str, ...]:
    """The streams (payload formats) a device of ``domain`` may publish: those the contract offers it."""
    from cityos.ingest.formats import FORMATS

    return tuple(sorted(name for name, fmt in FORMATS.items() if fmt.domains is None or domain in fmt.domains))


def device_role(device_id: str, domain: str) -> Role:
    """A device: publish its own stream topics only (literal topics, no wildcard); read only its own
    confirmation topic (which of its messages the platform has stored) and its own command topics."""
    from cityos.ingest.topics import COMMANDS, command_topic, confirm_topic, topic_for

    return Role(device_role_name(device_id),
                tuple(Acl(PUBLISH, topic_for(domain, device_id, s)) for s in device_streams(domain))
                + _reads(confirm_topic(device_id), *(command_topic(device_id, c) for c in COMMANDS)))


@dataclass(frozen=True)
class DeviceCredential:
    """A device's broker identity: user = device id, its domain, the stored ``$7$`` password hash."""

    device_id: str
    domain: str
    password_hash: str


def device_client_roles(device_id: str) -> list[dict]:
    """A device's roles: the ingest gate above its own."""
    return [{"rolename": GATE_ROLE, "priority": GATE_PRIORITY},
            {"rolename": device_role_name(device_id), "priority": 0}]


def _client(username: str, stored_hash: str, role: str, roles: list[dict] | None = None) -> dict:
    return {"username": username, "roles": roles or [{"rolename": role, "priority": 0}], **plugin_password(stored_hash)}


def render_config(service_password_hash: str, devices: Iterable[DeviceCredential]) -> dict:
    """The plugin's whole configuration file: defaults, the service, public and device accounts and roles."""
    devices = sorted(devices, key=lambda d: d.device_id)
    roles = [service_role(), public_role(), gate_role(closed=True),
             *(device_role(d.device_id, d.domain) for d in devices)]
    clients = [_client(SERVICE_USER, service_password_hash, SERVICE_ROLE),
               _client(PUBLIC_USER, public_hash(), PUBLIC_ROLE)]
    clients += [_client(d.device_id, d.password_hash, "", device_client_roles(d.device_id)) for d in devices]
    return {"defaultACLAccess": DEFAULT_ACCESS, "clients": clients, "groups": [],
            "roles": [r.as_json() for r in roles]}


def write_config(path: Path, config: dict) -> None:
    """Write the plugin's file atomically, mode 600, owned like its folder (the plugin rewrites it as mosquitto)."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh, indent=1)
    if os.geteuid() == 0:
        st = path.parent.stat()
        os.chown(tmp, st.st_uid, st.st_gid)
    os.replace(tmp, path)
