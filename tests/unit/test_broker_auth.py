"""Broker roles and the dynamic security plugin's file, rendered from the registry (no broker needed)."""

from __future__ import annotations

import base64
import hashlib

from cityos.ingest.broker_auth import (
    PUBLISH,
    RECEIVE,
    SUBSCRIBE,
    DeviceCredential,
    device_role,
    mosquitto_hash,
    plugin_password,
    public_role,
    render_config,
    service_role,
)


def test_a_device_role_grants_its_own_stream_topics_its_own_confirmations_and_commands_and_nothing_else():
    role = device_role("plow-07", "vehicle")
    assert {(a.acltype, a.topic) for a in role.acls} == {
        (PUBLISH, "cityos/v1/vehicle/plow-07/readings"), (PUBLISH, "cityos/v1/vehicle/plow-07/senml"),
        (PUBLISH, "cityos/v1/vehicle/plow-07/d4c"),
        (SUBSCRIBE, "cityos/confirm/v1/plow-07"), (RECEIVE, "cityos/confirm/v1/plow-07"),
        (SUBSCRIBE, "cityos/command/v1/plow-07/resend"), (RECEIVE, "cityos/command/v1/plow-07/resend")}
    assert all(a.allow and "#" not in a.topic and "+" not in a.topic for a in role.acls)


def test_d4c_is_offered_to_vehicles_only():
    assert {a.topic.rsplit("/", 1)[1] for a in device_role("hems-0001", "hems").acls
            if a.acltype == PUBLISH} == {"readings", "senml"}


def test_public_reads_the_public_tree_only():
    assert {(a.acltype, a.topic) for a in public_role().acls} == {
        (SUBSCRIBE, "cityos/public/#"), (RECEIVE, "cityos/public/#"),  # the platform's public tree
        (SUBSCRIBE, "v1.1/#"), (RECEIVE, "v1.1/#")}  # the SensorThings MQTT extension (public devices only)


def test_only_the_service_role_names_the_ingest_share_group():
    assert (SUBSCRIBE, "$share/cityos-ingest/cityos/v1/#") in {(a.acltype, a.topic) for a in service_role().acls}
    assert not any("$share" in a.topic for a in public_role().acls + device_role("hems-0001", "hems").acls)


def test_a_registry_hash_becomes_the_plugins_password_fields():
    stored = mosquitto_hash("s3cret")
    fields = plugin_password(stored)
    salt = base64.b64decode(fields["salt"])
    expected = hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, fields["iterations"])
    assert base64.b64decode(fields["password"]) == expected and len(salt) == 12


def test_the_plugins_file_denies_by_default_and_holds_every_active_device():
    config = render_config(mosquitto_hash("svc"), [DeviceCredential("hems-0001", "hems", mosquitto_hash("x"))])
    assert config["defaultACLAccess"] == {"publishClientSend": False, "publishClientReceive": False,
                                          "subscribe": False, "unsubscribe": True}
    assert [c["username"] for c in config["clients"]] == ["cityos-service", "public", "hems-0001"]
    assert {r["rolename"] for r in config["roles"]} == {"cityos-service", "cityos-public", "device-hems-0001",
                                                        "cityos-ingest-gate"}


def test_the_plugins_file_starts_with_the_ingest_gate_closed_above_every_devices_own_role():
    config = render_config(mosquitto_hash("svc"), [DeviceCredential("hems-0001", "hems", mosquitto_hash("x"))])
    gate = next(r for r in config["roles"] if r["rolename"] == "cityos-ingest-gate")
    assert [(a["acltype"], a["topic"], a["allow"]) for a in gate["acls"]] == [(PUBLISH, "cityos/v1/#", False)]
    device = next(c for c in config["clients"] if c["username"] == "hems-0001")
    priorities = {r["rolename"]: r["priority"] for r in device["roles"]}
    assert priorities["cityos-ingest-gate"] > priorities["device-hems-0001"]


def test_closing_the_gate_of_an_open_file_restores_the_deny_rule():
    from cityos.ingest.broker_auth import close_gate, gate_role

    opened = {"roles": [gate_role(closed=False).as_json(), {"rolename": "device-x", "acls": []}]}
    closed = close_gate(opened)
    assert {r["rolename"] for r in closed["roles"]} == {"cityos-ingest-gate", "device-x"}
    assert next(r for r in closed["roles"] if r["rolename"] == "cityos-ingest-gate")["acls"][0]["allow"] is False
