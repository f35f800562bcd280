"""The audit log: one row for every read or change of personal data, from any entry point.

Each row names **who** (the token's name for the API, the OS user for the CLI, the job's name for a
scheduled job: ``CITYOS_JOB_NAME``, set by its systemd unit), **what** (the route or command), **which
subject** (a resident, a device, a dataset request, or the selection when a command reads many) and
**why** (the purpose declared here). Every API route and CLI command that touches personal data is
declared in :data:`PERSONAL`; every other command says in :data:`NOT_AUDITED` why it needs no row.
``tests/integration/test_audit.py`` walks every CLI command and API route: a new one fails until it is
declared, and each declared one is run and must leave its row.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg.types.json import Jsonb

EntryPoint = Literal["api", "cli", "job"]


@dataclass(frozen=True)
class Access:
    """A declared access to personal data.

    ``subject`` says where the subject is found: ``path:NAME`` / ``query:NAME`` / ``body:NAME`` (a request's
    parameter or JSON field), ``arg:NAME`` (a command's argument), ``households`` (the token's own meter), or a
    fixed description of the selection (``all open dataset requests``) for accesses to many."""

    what: str
    subject: str
    why: str


@dataclass(frozen=True)
class Who:
    """Who acts, and through which entry point."""

    name: str
    entry_point: EntryPoint

    @classmethod
    def cli(cls) -> Who:
        """The person at the command line (their OS user), or the scheduled job that runs the command."""
        from cityos.platform.settings import get_settings

        if job := get_settings().job_name:
            return cls(job, "job")
        return cls(os_user(), "cli")


def os_user() -> str:
    """The operating-system user running this process (by uid, not by the spoofable ``USER`` variable)."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return getpass.getuser()


#: Every entry point that reads or changes personal data: ``api:METHOD /path`` or ``cli:group command``.
PERSONAL: dict[str, Access] = {
    # consent registry
    "api:POST /api/v1/consents": Access("consent change", "body:subject_id", "record a resident's consent"),
    "api:GET /api/v1/consents/{subject_id}": Access("consent history", "path:subject_id",
                                                     "show a resident's consents"),
    "cli:consent grant": Access("consent change", "arg:subject", "record a resident's consent"),
    "cli:consent withdraw": Access("consent change", "arg:subject", "record a resident's withdrawal"),
    "cli:consent show": Access("consent history", "arg:subject", "show a resident's consents"),
    # devices (household meters and wearables belong to residents)
    "api:POST /api/v1/devices": Access("device registry", "body:device_id", "register a device"),
    "api:GET /api/v1/devices": Access("device registry", "all devices", "list devices"),
    "api:POST /api/v1/devices/{device_id}/revoke": Access("device registry", "path:device_id", "revoke a device"),
    "api:POST /api/v1/devices/{device_id}/enrolment-token": Access("device credentials", "path:device_id",
                                                                    "enrol a device's gateway"),
    "api:GET /api/v1/devices/gaps": Access("delivery gaps of devices", "query:device_id",
                                           "check that every reading arrived"),
    "cli:devices add": Access("device registry", "arg:device_id", "register a device"),
    "cli:devices gaps": Access("delivery gaps of devices", "all devices", "check that every reading arrived"),
    "cli:devices resend": Access("a device's readings", "arg:device_id", "ask a gateway to resend lost readings"),
    "cli:devices list": Access("device registry", "all devices", "list devices"),
    "cli:devices revoke": Access("device registry", "arg:device_id", "revoke a device"),
    "cli:devices stats": Access("device ledger", "arg:device_id", "check that a device's readings arrived"),
    "cli:devices fleet": Access("device ledger", "all devices", "find silent devices and refused messages"),
    "api:GET /api/v1/devices/{device_id}/stats": Access("device ledger", "path:device_id",
                                                        "check that a device's readings arrived"),
    "api:GET /api/v1/devices/fleet": Access("device ledger", "all devices",
                                            "find silent devices and refused messages"),
    "cli:devices sync": Access("broker accounts of devices", "all devices", "align the broker with the registry"),
    "cli:simulate": Access("simulated devices and consents", "simulated residents and devices",
                           "demo telemetry (fictitious residents)"),
    # rejected messages hold residents' readings
    "api:GET /api/v1/deadletters": Access("dead letters", "rejected messages", "inspect rejected messages"),
    "api:POST /api/v1/deadletters/replay": Access("dead letters", "rejected messages", "replay rejected messages"),
    "cli:deadletters list": Access("dead letters", "rejected messages", "inspect rejected messages"),
    "cli:deadletters replay": Access("dead letters", "rejected messages", "replay rejected messages"),
    # resident registry and addresses (the GIS analyses' staff routes and commands: cityos.gis.declarations)
    "api:GET /api/v1/gis/registry/residents": Access("registry rows", "query:district_code",
                                                      "staff reading registry rows of a district"),
    "cli:gis load-registry": Access("registry rows", "all residents", "replace the registry with an extract"),
    "cli:gis apply-registry-changes": Access("registry rows", "arg:path", "apply the registry's daily changes"),
    "cli:backup": Access("the whole platform database", "all residents", "backup of the platform"),
    # a household's own meter
    "api:GET /api/v1/energy/my": Access("household meter", "households", "the household's own dashboard"),
    # hydrant reports and dataset requests (reporters' and requesters' data)
    "api:GET /api/v1/hydrants/reports": Access("hydrant reports", "pending hydrant reports", "moderation"),
    "api:POST /api/v1/hydrants/reports/{report_id}/moderation": Access("hydrant report", "path:report_id",
                                                                        "moderation"),
    "api:GET /api/v1/dataset-requests/inbox": Access("requesters' contacts", "query:status",
                                                     "answer dataset requests"),
    "api:POST /api/v1/dataset-requests/{request_id}/answer": Access("dataset request", "path:request_id",
                                                                     "answer a dataset request"),
    "cli:requests list": Access("requesters' contacts", "arg:status", "answer dataset requests"),
    "cli:requests answer": Access("dataset request", "arg:request_id", "answer a dataset request"),
    "cli:requests close": Access("dataset request", "arg:request_id", "close a dataset request"),
    # open data: consenting residents' data read to build aggregates
    "cli:publish": Access("consenting residents' data, aggregated", "contributors of each dataset",
                          "publish open data"),
    "cli:datasets build": Access("consenting residents' data, aggregated", "contributors of each dataset",
                                 "review open data before publishing"),
    # NGSI-LD: a token with telemetry:read sees household meters and wearables (anonymous calls see public
    # devices only and are not audited); producers write residents' readings
    **{f"api:GET /ngsi-ld/v1{path}": Access("telemetry of every device", subject, "standard-API access by staff")
       for path, subject in (("/entities", "query:type"), ("/entities/{entityId}", "path:entityId"),
                             ("/temporal/entities", "query:type"), ("/temporal/entities/{entityId}", "path:entityId"),
                             ("/types", "entity types"), ("/types/{type_name}", "path:type_name"),
                             ("/attributes", "attribute names"), ("/attributes/{attr}", "path:attr"),
                             ("/subscriptions", "the token's subscriptions"),
                             ("/subscriptions/{subscriptionId}", "path:subscriptionId"))},
    "api:POST /ngsi-ld/v1/entityOperations/query": Access("telemetry of every device", "entities of the query",
                                                          "standard-API access by staff"),
    "api:POST /ngsi-ld/v1/subscriptions": Access("telemetry of every device", "the token's subscription",
                                                 "notifications to staff systems"),
    "api:PATCH /ngsi-ld/v1/subscriptions/{subscriptionId}": Access("telemetry of every device",
                                                                  "path:subscriptionId",
                                                                  "notifications to staff systems"),
    "api:DELETE /ngsi-ld/v1/subscriptions/{subscriptionId}": Access("telemetry of every device",
                                                                   "path:subscriptionId",
                                                                   "notifications to staff systems"),
    "api:POST /ngsi-ld/v1/entityOperations/upsert": Access("readings of devices", "devices of the body",
                                                           "a producer service storing readings"),
    "api:PATCH /ngsi-ld/v1/entities/{entityId}/attrs": Access("readings of a device", "path:entityId",
                                                              "a producer service storing readings"),
    "api:POST /ngsi-ld/v1/entities/{entityId}/attrs": Access("readings of a device", "path:entityId",
                                                             "a producer service storing readings"),
    # retention deletes raw telemetry
    "cli:db maintain": Access("raw telemetry", "readings older than the retention", "retention"),
}

#: Entry points that need no audit row, each with the reason (a new one fails the test until it is here).
NOT_AUDITED: dict[str, str] = {
    "cli:up": "starts the servers; the demo's publish run is audited as the job cityos-up",
    "cli:restore": "writes a backup (its audit trail included, with the backup's own row) into an empty database",
    "cli:down": "stops the servers", "cli:status": "server status", "cli:logs": "server logs",
    "cli:test": "runs the test suite against test databases",
    "cli:ingest": "the ingest service: stores each device's own readings (kept with their arrival time)",
    "cli:db migrate": "schema changes", "cli:tokens create": "staff tokens", "cli:tokens revoke": "staff tokens",
    "cli:gis load-fire-water": "a public layer", "cli:gis load": "a public layer",
    "cli:gis export": "public layers and suppressed aggregates",
    "cli:datasets list": "definitions and publish dates",
    "cli:gateway check": "runs on a gateway: its own configuration",
    "cli:gateway run": "runs on a gateway: forwards its own devices' readings",
    "cli:gateway enroll": "runs on a gateway: its own credentials", "cli:gateway status": "runs on a gateway",
}


def declare_not_audited(reasons: dict[str, str]) -> None:
    """Add entry points declared by another registry (the GIS analyses' commands) with why they need no row."""
    for entry, why in reasons.items():
        if entry in PERSONAL or NOT_AUDITED.setdefault(entry, why) != why:
            raise ValueError(f"{entry!r} is declared twice")


def declare_personal(accesses: dict[str, Access]) -> None:
    """Add entry points declared by another registry (the GIS analyses' staff routes and commands)."""
    for entry, access in accesses.items():
        if entry in NOT_AUDITED or PERSONAL.setdefault(entry, access) != access:
            raise ValueError(f"{entry!r} is declared twice")


class UndeclaredAccess(LookupError):
    """An entry point asked to audit an access it has not declared in :data:`PERSONAL`."""


def access_of(entry: str) -> Access:
    """The declared access of ``entry`` (raises :class:`UndeclaredAccess`)."""
    try:
        return PERSONAL[entry]
    except KeyError:
        raise UndeclaredAccess(f"{entry!r} is not declared in cityos.platform.audit.PERSONAL") from None


INSERT = ("insert into core.audit_log (actor, role, entry_point, action, resource, subject, reason, detail, "
          "client_addr) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)")


def record(conn: psycopg.Connection, who: Who, action: str, resource: str, *, subject: str = "", reason: str = "",
           role: str = "", detail: dict | None = None, client_addr: str | None = None) -> None:
    """Append one row (inside the caller's transaction, when it has one)."""
    conn.execute(INSERT, (who.name, role, who.entry_point, action, resource, subject, reason, Jsonb(detail or {}),
                          client_addr))


def record_command(conn: psycopg.Connection, command: str, subject: str = "", detail: dict | None = None,
                   who: Who | None = None) -> None:
    """The row of the CLI command ``command`` (``"consent grant"``): who ran it, its declared purpose."""
    access = access_of(f"cli:{command}")
    record(conn, who or Who.cli(), f"cli:{command}", access.what, subject=subject or access.subject,
           reason=access.why, role="staff-cli", detail=detail)


def audited_command(command: str, subject: str = "", detail: dict | None = None) -> None:
    """:func:`record_command` on a connection of its own (for commands whose work commits by itself)."""
    from cityos.platform.db.connection import connect

    with connect(autocommit=True) as conn:
        record_command(conn, command, subject, detail)
