"""Mosquitto's dynamic security plugin, driven over its MQTT control topic while the broker runs.

Commands are JSON published to ``$CONTROL/dynamic-security/v1``; the plugin answers on
``.../response`` (to every admin, so answers are matched by ``correlationData``). Changes take effect
at once: deleting a client or changing its password disconnects its sessions. Command names and
fields are those of Mosquitto 2.0.11 (``plugins/dynamic-security`` in its source).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field

from cityos.ingest.broker_auth import (
    DEFAULT_ACCESS,
    GATE_ROLE,
    GATED_TOPIC,
    PUBLIC_ROLE,
    PUBLIC_USER,
    PUBLISH,
    SERVICE_ROLE,
    SERVICE_USER,
    Acl,
    Role,
    device_client_roles,
    device_role,
    device_role_name,
    gate_role,
    public_role,
    service_role,
)
from cityos.platform.mqtt import BrokerAddress, new_client

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
#: Commands per control message (each changing command makes the plugin rewrite its file).
CHUNK = 200


class DynsecError(RuntimeError):
    """The broker could not be reached, or refused a command; the message says which and why."""


class DynsecControl:
    """A connection to the plugin's control API as the service account (use as a context manager)."""

    def __init__(self, url: str, timeout: float = 10.0):
        self.address = BrokerAddress.parse(url)
        self.timeout = timeout
        self._client = new_client(self.address, f"cityos-dynsec-{uuid.uuid4().hex[:10]}")
        self._waiting: dict[str, threading.Event] = {}
        self._answers: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._refused = ""
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def _on_connect(self, client, _u, _f, reason_code, _p) -> None:
        if reason_code.is_failure:
            self._refused = f"broker refused the service account: {reason_code}"
            self._ready.set()
            return
        client.subscribe(RESPONSE_TOPIC, qos=1)

    def _on_subscribe(self, _c, _u, _mid, reason_codes, _p) -> None:
        if reason_codes[0].is_failure:
            self._refused = f"the service account may not read {RESPONSE_TOPIC}: {reason_codes[0]}"
        self._ready.set()

    def _on_message(self, _c, _u, msg) -> None:
        try:
            responses = json.loads(msg.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            return
        with self._lock:
            for answer in responses:
                key = answer.get("correlationData") if isinstance(answer, dict) else None
                if key in self._waiting:
                    self._answers[key] = answer
                    self._waiting.pop(key).set()

    def __enter__(self) -> DynsecControl:
        try:
            self._client.connect(self.address.host, self.address.port, keepalive=30)
        except OSError as exc:
            raise DynsecError(f"cannot reach the broker at {self.address.host}:{self.address.port}: {exc}") from exc
        self._client.loop_start()
        if not self._ready.wait(self.timeout) or self._refused:
            self.close()
            raise DynsecError(self._refused or "no answer from the broker")
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def run(self, commands: list[dict], tolerate: tuple[str, ...] = ()) -> list[dict]:
        """Send ``commands`` in order; their answers. Raises :class:`DynsecError` on an error not in ``tolerate``."""
        answers: list[dict] = []
        for start in range(0, len(commands), CHUNK):
            answers += self._send(commands[start:start + CHUNK])
        for command, answer in zip(commands, answers, strict=True):
            error = answer.get("error")
            if error and error not in tolerate:
                raise DynsecError(f"{command['command']} refused by the broker: {error}")
        return answers

    def _send(self, commands: list[dict]) -> list[dict]:
        keys = [uuid.uuid4().hex for _ in commands]
        events = {k: threading.Event() for k in keys}
        with self._lock:
            self._waiting.update(events)
        payload = json.dumps({"commands": [{**c, "correlationData": k} for c, k in zip(commands, keys, strict=True)]})
        self._client.publish(CONTROL_TOPIC, payload, qos=1)
        for key in keys:
            if not events[key].wait(self.timeout):
                with self._lock:
                    for k in keys:
                        self._waiting.pop(k, None)
                raise DynsecError(f"no answer from the dynamic security plugin within {self.timeout} s")
        with self._lock:
            return [self._answers.pop(k) for k in keys]

    # -- state ------------------------------------------------------------------------------------------
    def clients(self) -> set[str]:
        """User names of every client the plugin knows."""
        answer = self.run([{"command": "listClients", "verbose": False}])[0]
        return set(answer["data"]["clients"])

    def client_roles(self) -> dict[str, set[str]]:
        """Every client's user name with the names of its roles."""
        answer = self.run([{"command": "listClients", "verbose": True}])[0]
        return {c["username"]: {r["rolename"] for r in c.get("roles", [])} for c in answer["data"]["clients"]}

    def default_access(self) -> dict[str, bool]:
        """What happens where no rule matches, per access type."""
        answer = self.run([{"command": "getDefaultACLAccess"}])[0]
        return {a["acltype"]: bool(a["allow"]) for a in answer["data"]["acls"]}

    def roles(self) -> dict[str, set[Acl]]:
        """Every role with its rules."""
        answer = self.run([{"command": "listRoles", "verbose": True}])[0]
        return {r["rolename"]: {Acl(a["acltype"], a["topic"], bool(a["allow"])) for a in r.get("acls", [])}
                for r in answer["data"]["roles"]}


def role_commands(role: Role, current: set[Acl] | None) -> list[dict]:
    """Commands that make the broker's role ``role.name`` grant exactly ``role.acls`` (create it if missing)."""
    if current is None:
        return [{"command": "createRole", "rolename": role.name, "acls": [a.as_json() for a in role.acls]}]
    wanted = set(role.acls)
    return ([{"command": "removeRoleACL", "rolename": role.name, "acltype": a.acltype, "topic": a.topic}
             for a in sorted(current - wanted)]
            + [{"command": "addRoleACL", "rolename": role.name, **a.as_json()} for a in sorted(wanted - current)])


#: The command an ingest worker sends once its share-group subscription is granted: devices may publish.
OPEN_GATE = {"command": "removeRoleACL", "rolename": GATE_ROLE, "acltype": PUBLISH, "topic": GATED_TOPIC}


def open_gate_payload() -> str:
    """The control message that opens the ingest gate (fire and forget: an open gate answers "ACL not found")."""
    return json.dumps({"commands": [OPEN_GATE]})


def put_devices(control: DynsecControl, devices: list[tuple[str, str, str]]) -> None:
    """Create or replace accounts and roles of ``(device_id, domain, password)``; old sessions are disconnected."""
    commands: list[dict] = []
    for device_id, domain, password in devices:
        role = device_role(device_id, domain)
        commands += [{"command": "deleteClient", "username": device_id},
                     {"command": "deleteRole", "rolename": role.name},
                     *role_commands(role, None),
                     {"command": "createClient", "username": device_id, "password": password,
                      "roles": device_client_roles(device_id)}]
    control.run(commands, tolerate=("Client not found", "Role not found"))


def remove_device(control: DynsecControl, device_id: str) -> None:
    """Delete a device's account (its sessions are disconnected at once) and its role."""
    control.run([{"command": "deleteClient", "username": device_id},
                 {"command": "deleteRole", "rolename": device_role_name(device_id)}],
                tolerate=("Client not found", "Role not found"))


@dataclass
class Reconciled:
    """What a reconciliation changed, and the active devices it could not restore."""

    removed: list[str] = field(default_factory=list)
    roles_changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def reconcile(control: DynsecControl, devices: dict[str, str]) -> Reconciled:
    """Make the running broker match the registry's active ``devices`` (id -> domain).

    Accounts of devices no longer active are deleted; every role is set to what the platform grants
    today; the default access is deny. An active device without an account cannot be restored here
    (the registry keeps only a hash, the control API takes only plain passwords): it is reported in
    ``missing``; rotating its password, or starting the broker from the registry, restores it.
    """
    result = Reconciled()
    held = control.client_roles()
    present = set(held)
    roles = control.roles()
    fixed = {SERVICE_USER: SERVICE_ROLE, PUBLIC_USER: PUBLIC_ROLE}
    commands: list[dict] = []
    if control.default_access() != DEFAULT_ACCESS:
        commands.append({"command": "setDefaultACLAccess",
                         "acls": [{"acltype": k, "allow": v} for k, v in DEFAULT_ACCESS.items()]})
    for name in sorted(present - set(devices) - set(fixed)):
        result.removed.append(name)
        commands += [{"command": "deleteClient", "username": name},
                     {"command": "deleteRole", "rolename": device_role_name(name)}]
    wanted = [service_role(), public_role(), *(device_role(d, domain) for d, domain in devices.items())]
    for role in wanted:
        changes = role_commands(role, roles.get(role.name))
        if changes:
            result.roles_changed.append(role.name)
            commands += changes
    if GATE_ROLE not in roles:  # its rule is the workers' to set: a running broker gets it open
        commands += role_commands(gate_role(closed=False), None)
    for name in sorted(present & set(devices)):
        if GATE_ROLE not in held[name]:
            commands.append({"command": "addClientRole", "username": name, "rolename": GATE_ROLE,
                             "priority": device_client_roles(name)[0]["priority"]})
    result.missing = sorted(set(devices) - present)
    if commands:  # each change rewrites the plugin's file; an idle reconciliation leaves it untouched
        control.run(commands, tolerate=("Role not found",))
    return result
