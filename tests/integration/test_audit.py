"""The audit trail has no holes: every CLI command and API route that reads or changes personal data leaves
one row naming who (the OS user, the token), what, which subject and why (cityos.platform.audit).

Every command and route is declared in ``cityos.platform.audit`` (PERSONAL, or NOT_AUDITED with the reason);
a new one fails ``test_every_cli_command_is_declared`` / ``test_every_personal_api_route_is_declared`` until
it is, and every declared one is run here against the real servers and must leave its row.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

from cityos.platform.audit import NOT_AUDITED, PERSONAL, os_user
from cityos.platform.auth import create_token
from cityos.platform.exits import API_ENERGY_MY, EXITS
from helpers import api_server

DATA = Path(__file__).with_name("data")
STAFF = "audit-staff"


def _cli_commands() -> set[str]:
    from cityos.platform.cli import app

    found = set()

    def walk(typer_app, prefix: str) -> None:
        for command in typer_app.registered_commands:
            found.add(f"cli:{prefix}{command.name or command.callback.__name__.replace('_', '-')}")
        for group in typer_app.registered_groups:
            walk(group.typer_instance, f"{prefix}{group.name} ")

    walk(app, "")
    return found


def test_every_cli_command_is_declared():
    commands = _cli_commands()
    declared = {k for k in PERSONAL if k.startswith("cli:")} | set(NOT_AUDITED)
    assert commands - declared == set(), "new commands: declare them in cityos.platform.audit (PERSONAL or NOT_AUDITED)"
    assert declared - commands == set(), "cityos.platform.audit declares commands that no longer exist"
    assert not set(PERSONAL) & set(NOT_AUDITED)


def test_every_personal_api_route_is_declared():
    """Routes that serve personal data to staff or to a household (cityos.platform.exits) are exactly those
    declared personal here."""
    personal_routes = {name for name, use in EXITS.items()
                       if name.startswith("api:") and (use.basis == "staff" or name == API_ENERGY_MY)}
    assert personal_routes == {k for k in PERSONAL if k.startswith("api:")}


# -- the CLI ---------------------------------------------------------------------------------------------
#: command -> (arguments, the subject its row must name). Run in this order (devices add before revoke...).
CLI_CALLS: dict[str, tuple[list[str], str]] = {
    "cli:consent grant": (["consent", "grant", "aud-r-cli", "energy", "research"], "aud-r-cli"),
    "cli:consent withdraw": (["consent", "withdraw", "aud-r-cli", "energy", "research"], "aud-r-cli"),
    "cli:consent show": (["consent", "show", "aud-r-cli"], "aud-r-cli"),
    "cli:devices add": (["devices", "add", "aud-dev-cli", "--domain", "hems", "--owner", "aud-r-cli"],
                        "aud-dev-cli"),
    "cli:devices list": (["devices", "list"], "all devices"),
    "cli:devices revoke": (["devices", "revoke", "aud-dev-cli"], "aud-dev-cli"),
    "cli:devices sync": (["devices", "sync"], "all devices"),
    "cli:devices stats": (["devices", "stats", "aud-dev-cli", "--days", "2"], "aud-dev-cli"),
    "cli:devices fleet": (["devices", "fleet"], "all devices"),
    "cli:devices gaps": (["devices", "gaps"], "all devices"),
    "cli:devices resend": (["devices", "resend", "aud-dev-cli", "--from", "1", "--to", "2"], "aud-dev-cli"),
    "cli:deadletters list": (["deadletters", "list"], "rejected messages"),
    "cli:deadletters replay": (["deadletters", "replay", "--reason", "nothing-pending"], "rejected messages"),
    "cli:simulate": (["simulate", "--homes", "1", "--snowplows", "0", "--patrol-cars", "0", "--wearables", "0",
                      "--duration", "0.2"], "simulated residents and devices"),
    "cli:gis load-registry": (["gis", "load-registry", str(DATA / "registry_extract_cp932.csv")], "all residents"),
    "cli:gis apply-registry-changes": (["gis", "apply-registry-changes", str(DATA / "registry_changes_20261124.csv")],
                                       "residents changed by registry_changes_20261124.csv"),
    "cli:gis vacant-houses": (["gis", "vacant-houses"], "addresses without residents"),
    "cli:backup": (["backup", "--to", "{tmp}"], "all residents"),
    "cli:requests list": (["requests", "list"], "status: open"),
    "cli:requests answer": (["requests", "answer", "{request}", "来月公開します"], "{request}"),
    "cli:requests close": (["requests", "close", "{request}"], "{request}"),
    "cli:publish": (["publish", "--dry-run", "--only", "energy-by-district-day"],
                    "residents with energy/open_data consent"),
    "cli:datasets build": (["datasets", "build", "bus-stops", "--out", "{tmp}"], "contributors of each dataset"),
    "cli:db maintain": (["db", "maintain"], "readings older than the retention"),
}


@pytest.fixture(scope="module")
def audited(private_database_url, test_broker):
    """The module's own database (the registry commands replace the registry) and a dataset request."""
    from cityos.opendata.dataset_requests import RequestIn, create

    with psycopg.connect(private_database_url, autocommit=True) as conn:
        request_id = create(conn, RequestIn(title="公衆トイレ一覧", contact="resident@example.jp"))
    return private_database_url, request_id


def _rows(database_url: str, after: int, **where: str) -> list[dict]:
    clauses = " and ".join(f"{k} = %({k})s" for k in where)
    with psycopg.connect(database_url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(f"select * from core.audit_log where id > %(after)s and {clauses} order by id",
                           {"after": after, **where}).fetchall()


def _last_id(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("select coalesce(max(id), 0) from core.audit_log").fetchone()[0]


def test_every_personal_command_is_exercised_here():
    assert set(CLI_CALLS) == {k for k in PERSONAL if k.startswith("cli:")}


@pytest.mark.parametrize("command", list(CLI_CALLS))
def test_a_personal_cli_command_leaves_a_row_naming_the_os_user_the_subject_and_why(
        command, audited, test_broker, monkeypatch, tmp_path):
    from cityos.platform.cli import app
    from cityos.platform.settings import get_settings

    database_url, request_id = audited
    monkeypatch.setenv("CITYOS_DATABASE_URL", database_url)
    monkeypatch.setenv("CITYOS_MQTT_URL", test_broker.url)
    monkeypatch.setenv("CITYOS_BROKER_AUTH_DIR", str(test_broker.broker.folder))
    monkeypatch.setenv("CITYOS_BROKER_PIDFILE", str(test_broker.broker.pidfile))
    monkeypatch.delenv("CITYOS_JOB_NAME", raising=False)
    get_settings.cache_clear()
    args, subject = CLI_CALLS[command]
    fill = {"request": str(request_id), "tmp": str(tmp_path)}
    args, subject = [a.format(**fill) for a in args], subject.format(**fill)
    before = _last_id(database_url)
    try:
        result = CliRunner().invoke(app, args, catch_exceptions=False)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    rows = _rows(database_url, before, actor=os_user(), entry_point="cli", reason=PERSONAL[command].why)
    assert len(rows) == 1, f"{command}: {len(rows)} audit rows"
    assert rows[0]["subject"] == subject


def test_a_scheduled_job_is_named_in_the_row_instead_of_the_os_user(audited, monkeypatch):
    from cityos.platform.cli import app
    from cityos.platform.settings import get_settings

    database_url, _ = audited
    monkeypatch.setenv("CITYOS_DATABASE_URL", database_url)
    monkeypatch.setenv("CITYOS_JOB_NAME", "cityos-publish")
    get_settings.cache_clear()
    before = _last_id(database_url)
    try:
        result = CliRunner().invoke(app, ["publish", "--dry-run", "--only", "bus-stops"], catch_exceptions=False)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    rows = _rows(database_url, before, entry_point="job")
    assert [(r["actor"], r["resource"]) for r in rows] == [("cityos-publish", "opendata/bus-stops")]


# -- the API ---------------------------------------------------------------------------------------------
#: route -> (method, URL path, JSON body, the subject its row must name).
API_CALLS: dict[str, tuple[str, str, dict | list | None, str]] = {
    "api:POST /api/v1/consents": ("POST", "/api/v1/consents", {"subject_id": "aud-r-api", "category": "energy",
                                                               "purpose": "research", "action": "grant"}, "aud-r-api"),
    "api:GET /api/v1/consents/{subject_id}": ("GET", "/api/v1/consents/aud-r-api", None, "aud-r-api"),
    "api:POST /api/v1/devices": ("POST", "/api/v1/devices", {"device_id": "aud-dev-api", "domain": "hems"},
                                 "aud-dev-api"),
    "api:GET /api/v1/devices": ("GET", "/api/v1/devices", None, "all devices"),
    "api:GET /api/v1/devices/{device_id}/stats": ("GET", "/api/v1/devices/aud-home/stats?days=3", None,
                                                  "aud-home"),
    "api:GET /api/v1/devices/fleet": ("GET", "/api/v1/devices/fleet", None, "all devices"),
    "api:GET /api/v1/devices/gaps": ("GET", "/api/v1/devices/gaps?device_id=aud-dev-api", None, "aud-dev-api"),
    "api:POST /api/v1/devices/{device_id}/revoke": ("POST", "/api/v1/devices/aud-dev-api/revoke", None,
                                                    "aud-dev-api"),
    "api:POST /api/v1/devices/{device_id}/enrolment-token": ("POST", "/api/v1/devices/aud-home/enrolment-token",
                                                             None, "aud-home"),
    "api:GET /api/v1/deadletters": ("GET", "/api/v1/deadletters", None, "rejected messages"),
    "api:POST /api/v1/deadletters/replay": ("POST", "/api/v1/deadletters/replay", {"reason": "none"},
                                            "rejected messages"),
    "api:GET /api/v1/gis/registry/residents": ("GET", "/api/v1/gis/registry/residents?district_code=07202-001",
                                               None, "07202-001"),
    "api:GET /api/v1/gis/registry/population": ("GET", "/api/v1/gis/registry/population?as_of=2026-11-15", None,
                                                 "all residents"),
    "api:GET /api/v1/gis/registry/bus-coverage": ("GET", "/api/v1/gis/registry/bus-coverage", None, "all residents"),
    "api:GET /api/v1/gis/vacant-houses": ("GET", "/api/v1/gis/vacant-houses", None, "addresses without residents"),
    "api:GET /api/v1/energy/my": ("GET", "/api/v1/energy/my", None, "aud-home"),
    "api:GET /api/v1/hydrants/reports": ("GET", "/api/v1/hydrants/reports", None, "pending hydrant reports"),
    "api:POST /api/v1/hydrants/reports/{report_id}/moderation": (
        "POST", "/api/v1/hydrants/reports/987654/moderation", {"decision": "approved"}, "987654"),
    "api:GET /api/v1/dataset-requests/inbox": ("GET", "/api/v1/dataset-requests/inbox", None, "status: (default)"),
    "api:POST /api/v1/dataset-requests/{request_id}/answer": (
        "POST", "/api/v1/dataset-requests/{request}/answer", {"answer": "来月公開します"}, "{request}"),
    # NGSI-LD with a token that sees every device
    "api:GET /ngsi-ld/v1/entities": ("GET", "/ngsi-ld/v1/entities?type=Device", None, "Device"),
    "api:GET /ngsi-ld/v1/entities/{entityId}": ("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Device:aud-home", None,
                                                "urn:ngsi-ld:Device:aud-home"),
    "api:POST /ngsi-ld/v1/entityOperations/query": (
        "POST", "/ngsi-ld/v1/entityOperations/query", {"type": "Query", "entities": [{"type": "Device"}]},
        "entities of the query"),
    "api:GET /ngsi-ld/v1/temporal/entities": ("GET", "/ngsi-ld/v1/temporal/entities?type=Device", None, "Device"),
    "api:GET /ngsi-ld/v1/temporal/entities/{entityId}": (
        "GET", "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Device:aud-home", None, "urn:ngsi-ld:Device:aud-home"),
    "api:GET /ngsi-ld/v1/types": ("GET", "/ngsi-ld/v1/types", None, "entity types"),
    "api:GET /ngsi-ld/v1/types/{type_name}": ("GET", "/ngsi-ld/v1/types/Device", None, "Device"),
    "api:GET /ngsi-ld/v1/attributes": ("GET", "/ngsi-ld/v1/attributes", None, "attribute names"),
    "api:GET /ngsi-ld/v1/attributes/{attr}": ("GET", "/ngsi-ld/v1/attributes/power_w", None, "power_w"),
    "api:GET /ngsi-ld/v1/subscriptions": ("GET", "/ngsi-ld/v1/subscriptions", None, "the token's subscriptions"),
    "api:GET /ngsi-ld/v1/subscriptions/{subscriptionId}": (
        "GET", "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:none", None, "urn:ngsi-ld:Subscription:none"),
    "api:POST /ngsi-ld/v1/subscriptions": (
        "POST", "/ngsi-ld/v1/subscriptions",
        {"type": "Subscription", "entities": [{"type": "Device"}],
         "notification": {"endpoint": {"uri": "http://192.0.2.1/notify"}}}, "the token's subscription"),
    "api:PATCH /ngsi-ld/v1/subscriptions/{subscriptionId}": (
        "PATCH", "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:none", {"throttling": 5},
        "urn:ngsi-ld:Subscription:none"),
    "api:DELETE /ngsi-ld/v1/subscriptions/{subscriptionId}": (
        "DELETE", "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:none", None, "urn:ngsi-ld:Subscription:none"),
    "api:POST /ngsi-ld/v1/entityOperations/upsert": (
        "POST", "/ngsi-ld/v1/entityOperations/upsert",
        [{"id": "urn:ngsi-ld:Device:aud-home", "type": "Device", "power_w": {"type": "Property", "value": 120}}],
        "devices of the body"),
    "api:PATCH /ngsi-ld/v1/entities/{entityId}/attrs": (
        "PATCH", "/ngsi-ld/v1/entities/urn:ngsi-ld:Device:aud-home/attrs",
        {"power_w": {"type": "Property", "value": 130}}, "urn:ngsi-ld:Device:aud-home"),
    "api:POST /ngsi-ld/v1/entities/{entityId}/attrs": (
        "POST", "/ngsi-ld/v1/entities/urn:ngsi-ld:Device:aud-home/attrs",
        {"power_w": {"type": "Property", "value": 140}}, "urn:ngsi-ld:Device:aud-home"),
}


@pytest.fixture(scope="module")
def audit_api(audited, test_broker, tmp_path_factory):
    from cityos.ingest.devices import add_device

    database_url, request_id = audited
    with psycopg.connect(database_url, autocommit=True) as conn:
        add_device(conn, "aud-home", "hems", owner_subject="aud-r-api", district_code="07202-001")
        token = create_token(conn, STAFF, ["admin", "household:aud-home"])
    env = {"CITYOS_DATABASE_URL": database_url, "CITYOS_MQTT_URL": test_broker.url,
           "CITYOS_HOME": str(tmp_path_factory.mktemp("audit-api")),
           "CITYOS_BROKER_AUTH_DIR": str(test_broker.broker.folder),
           "CITYOS_BROKER_PIDFILE": str(test_broker.broker.pidfile)}
    with api_server(env) as base:
        yield base, token, database_url, request_id


def test_every_personal_route_is_exercised_here():
    assert set(API_CALLS) == {k for k in PERSONAL if k.startswith("api:")}


@pytest.mark.parametrize("route", list(API_CALLS))
def test_a_personal_api_route_leaves_a_row_naming_the_token_the_subject_and_why(route, audit_api):
    base, token, database_url, request_id = audit_api
    method, path, body, subject = API_CALLS[route]
    path, subject = path.format(request=request_id), subject.format(request=request_id)
    before = _last_id(database_url)
    response = httpx.request(method, base + path, json=body, headers={"Authorization": f"Bearer {token}"},
                             timeout=30)
    assert response.status_code < 500, response.text
    rows = _rows(database_url, before, actor=STAFF, entry_point="api", reason=PERSONAL[route].why)
    assert len(rows) == 1, f"{route}: {len(rows)} audit rows"
    assert (rows[0]["action"], rows[0]["subject"]) == (route.removeprefix("api:"), subject)
