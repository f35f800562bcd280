"""Every exit of data from the platform, with what it may carry: the one place that maps exit -> purpose.

An *exit* is anything that hands data to someone outside the database: an API route (live feeds
included), a topic of the public MQTT tree, a layer export, a CKAN dataset, an OGC collection (its
items and its vector tiles). Each is declared here with its :class:`Use`:

- ``consent``: personal data of residents who consented to (category, purpose), aggregated and
  suppressed below k where it is public. The exit's query selects its contributors with
  :func:`consent_filter` (the SQL function ``core.consenting_subjects``), never by spelling a
  purpose itself, so a public exit cannot count homes that consented to research only.
- ``statutory``: aggregates the city publishes by law from the resident registry (no per-person
  consent; cells below k suppressed).
- ``staff``: personal data for staff with a scoped token, every access audited
  (:mod:`cityos.platform.audit`).
- ``non_personal``: nobody's personal data (public layers, city vehicles, the service's health).
- ``per_item``: a route that serves several exits (``/api/v1/gis/exports/{layer}``); each item has
  its own entry (``export:<layer>``).

``tests/unit/test_exits.py`` walks every route of the API, every export, dataset, OGC collection and
public MQTT topic, and fails on any that is not declared here; ``tests/integration/test_permissions.py``
plants homes with every consent except open data and checks that no anonymous answer moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cityos.platform.consent import CATEGORIES, PURPOSES

Basis = Literal["consent", "statutory", "staff", "non_personal", "per_item"]


class UndeclaredExit(LookupError):
    """An exit asked for its purpose without being declared in :data:`EXITS`."""


@dataclass(frozen=True)
class Use:
    """What an exit may carry and why."""

    basis: Basis
    category: str | None = None
    purpose: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if (self.basis == "consent") != (self.category is not None and self.purpose is not None):
            raise ValueError("a consent exit names a category and a purpose, and only it")
        if self.category is not None and (self.category not in CATEGORIES or self.purpose not in PURPOSES):
            raise ValueError(f"unknown consent {self.category}/{self.purpose}")

    def describe(self) -> str:
        """How the README and the API docs say it."""
        if self.basis == "consent":
            return f"consent: {self.category} / {self.purpose}"
        return self.basis.replace("_", "-")


NON_PERSONAL = Use("non_personal")
STATUTORY = Use("statutory", note="resident-registry aggregates, cells below k suppressed")
STAFF = Use("staff", note="scoped token; every access audited")
OPEN_ENERGY = Use("consent", "energy", "open_data", note="opted-in homes, blank below k homes")
OPEN_HEALTH = Use("consent", "health", "open_data", note="opted-in wearers, blank below k wearers")
NGSILD_READ = Use("staff", note="anonymous callers and API keys: public devices only (city vehicles, patrol cars "
                  "15 min late; environment sensors); household and health devices only with telemetry:read, "
                  "audited")
SERVICE_ENERGY = Use("consent", "energy", "services",
                     note="the household's own meter, and its district's homes that consented to services")

SENSORTHINGS = Use("non_personal", note="public city vehicles and environment sensors; staff with sta:read also "
                   "the non-public ones (audited)")

STA_INTAKE = Use("non_personal", note="intake: city devices' observations through ingest's validation; answers "
                 "only links")

# Names of the exits that select consenting subjects (used by their queries).
API_ENERGY_BY_DISTRICT = "api:GET /api/v1/gis/energy-by-district"
API_ENERGY_MY = "api:GET /api/v1/energy/my"
FEED_ENERGY = "api:GET /api/v1/live/energy"
FEED_ENERGY_WS = "api:WEBSOCKET /api/v1/live/energy/ws"
MQTT_ENERGY = "mqtt:cityos/public/v1/energy/districts"

_API: dict[tuple[str, str], Use] = {
    ("GET", "/docs"): NON_PERSONAL, ("GET", "/openapi.json"): NON_PERSONAL, ("GET", "/apps/config.json"): NON_PERSONAL,
    ("GET", "/healthz"): NON_PERSONAL, ("GET", "/readyz"): NON_PERSONAL, ("GET", "/metrics"): NON_PERSONAL,
    ("POST", "/api/v1/consents"): STAFF, ("GET", "/api/v1/consents/{subject_id}"): STAFF,
    ("POST", "/api/v1/keys"): NON_PERSONAL,
    ("GET", "/api/v1/sensors"): NON_PERSONAL, ("GET", "/api/v1/sensors/latest"): NON_PERSONAL,
    ("GET", "/api/v1/sensors/{device_id}/series"): NON_PERSONAL,
    ("POST", "/api/v1/devices"): STAFF, ("GET", "/api/v1/devices"): STAFF, ("GET", "/api/v1/devices/gaps"): STAFF,
    ("POST", "/api/v1/devices/{device_id}/revoke"): STAFF,
    ("POST", "/api/v1/devices/{device_id}/enrolment-token"): STAFF,
    ("POST", "/api/v1/devices/enroll"): NON_PERSONAL,
    ("GET", "/api/v1/devices/{device_id}/stats"): STAFF, ("GET", "/api/v1/devices/fleet"): STAFF,
    ("GET", "/api/v1/deadletters"): STAFF, ("POST", "/api/v1/deadletters/replay"): STAFF,
    ("GET", "/ogc"): NON_PERSONAL, ("GET", "/ogc/conformance"): NON_PERSONAL,
    ("GET", "/ogc/collections"): NON_PERSONAL,
    ("GET", "/ogc/collections/{collection_id}"): Use("per_item", note="ogc:<collection>"),
    ("GET", "/ogc/collections/{collection_id}/items"): Use("per_item", note="ogc:<collection>"),
    ("GET", "/ogc/collections/{collection_id}/items/{feature_id}"): Use("per_item", note="ogc:<collection>"),
    ("GET", "/ogc/collections/{collection_id}/queryables"): NON_PERSONAL,
    ("GET", "/ogc/tiles/{collection_id}/{z}/{x}/{y}.pbf"): Use("per_item", note="ogc:<collection>"),
    ("GET", "/api/v1/gis/registry/residents"): STAFF,
    ("GET", "/api/v1/gis/exports/{layer}"): Use("per_item", note="export:<layer>"),
    # the landing page, the docs and the apps' static base layers (public OGC layers, no personal data)
    ("GET", "/"): NON_PERSONAL, ("GET", "/apps"): NON_PERSONAL, ("GET", "/apps/"): NON_PERSONAL,
    ("GET", "/favicon.ico"): NON_PERSONAL, ("GET", "/redoc"): NON_PERSONAL,
    ("GET", "/apps/data/manifest.json"): NON_PERSONAL, ("GET", "/apps/data/{name}"): NON_PERSONAL,
    ("GET", "/api/v1/energy/my"): SERVICE_ENERGY,
    ("POST", "/api/v1/hydrants/{hydrant_id}/reports"): NON_PERSONAL,
    ("GET", "/api/v1/hydrants/reports"): STAFF,
    ("POST", "/api/v1/hydrants/reports/{report_id}/moderation"): STAFF,
    ("GET", "/api/v1/hydrants/status"): NON_PERSONAL,
    ("POST", "/api/v1/dataset-requests"): NON_PERSONAL, ("GET", "/api/v1/dataset-requests"): NON_PERSONAL,
    ("GET", "/api/v1/dataset-requests/inbox"): STAFF,
    ("GET", "/api/v1/dataset-requests/{request_id}"): NON_PERSONAL,
    ("POST", "/api/v1/dataset-requests/{request_id}/answer"): STAFF,
    ("GET", "/api/v1/live/snowplows"): NON_PERSONAL, ("WEBSOCKET", "/api/v1/live/snowplows/ws"): NON_PERSONAL,
    ("GET", "/api/v1/live/energy"): OPEN_ENERGY, ("WEBSOCKET", "/api/v1/live/energy/ws"): OPEN_ENERGY,
    # NGSI-LD (cityos.ingest.ngsild): public devices for anyone, every device for telemetry:read (audited)
    **{("GET", f"/ngsi-ld/v1{path}"): NGSILD_READ for path in (
        "/entities", "/entities/{entityId}", "/types", "/types/{type_name}", "/attributes", "/attributes/{attr}",
        "/temporal/entities", "/temporal/entities/{entityId}", "/subscriptions", "/subscriptions/{subscriptionId}")},
    ("GET", "/ngsi-ld/v1/jsonldContexts/{name}"): NON_PERSONAL,
    ("POST", "/ngsi-ld/v1/subscriptions"): NGSILD_READ, ("POST", "/ngsi-ld/v1/entityOperations/query"): NGSILD_READ,
    ("PATCH", "/ngsi-ld/v1/subscriptions/{subscriptionId}"): NGSILD_READ,
    ("DELETE", "/ngsi-ld/v1/subscriptions/{subscriptionId}"): NGSILD_READ,
    # producers write readings; nothing leaves the platform through them
    ("POST", "/ngsi-ld/v1/entityOperations/upsert"): STAFF, ("PATCH", "/ngsi-ld/v1/entities/{entityId}/attrs"): STAFF,
    ("POST", "/ngsi-ld/v1/entities/{entityId}/attrs"): STAFF,
    # SensorThings API (cityos.sta): city vehicles and environment sensors, never household or health devices
    **{("GET", f"/sta/v1.1{path}"): SENSORTHINGS for path in
       ("", "/{entity_set}", "/{entity_set}({entity_id})", "/{entity_set}({entity_id})/{navigation}")},
    ("POST", "/sta/v1.1/Observations"): STA_INTAKE, ("POST", "/sta/v1.1/CreateObservations"): STA_INTAKE,
}

#: Every exit: ``api:METHOD path``, ``mqtt:topic``, ``export:layer``, ``ogc:collection``, ``cli:command``
#: (commands that print an analysis) and ``dataset:builder`` (a CKAN dataset, by the builder that reads its
#: data: every dataset built by it serves that purpose, and its definition file must say the same).
EXITS: dict[str, Use] = {
    **{f"api:{method} {path}": use for (method, path), use in _API.items()},
    "mqtt:cityos/public/v1/snowplows/{device_id}": Use("non_personal", note="public snowplows"),
    MQTT_ENERGY: OPEN_ENERGY,
    "mqtt:v1.1/Datastreams({id})/Observations": SENSORTHINGS, "mqtt:v1.1/Things({id})/Locations": SENSORTHINGS,
    # the layers' ogc:/export: exits and the GIS analyses' routes, exports, commands and datasets come from
    # cityos.gis.declarations (gis/analyses/declared/)
    "dataset:bus_stops": NON_PERSONAL, "dataset:energy_by_district_day": OPEN_ENERGY,
    "dataset:fire_water": NON_PERSONAL, "dataset:health_by_district_month": OPEN_HEALTH,
    "dataset:snowplow_tracks": NON_PERSONAL,
}


#: Modules that declare further exits when loaded (by name: the platform imports nothing of the others at
#: import time): each GIS layer's collection and export, each declared analysis's route, export and dataset.
CONTRIBUTORS = ("cityos.gis.declarations:ensure_declared",)


def declare(entries: dict[str, Use]) -> None:
    """Add exits declared by another registry; the same name with another use is an error."""
    for name, use in entries.items():
        if EXITS.setdefault(name, use) != use:
            raise ValueError(f"exit {name!r} is declared twice with different uses")


def _contribute() -> None:
    import importlib

    for spec in CONTRIBUTORS:
        module, _, function = spec.partition(":")
        try:
            contribute = getattr(importlib.import_module(module), function)
        except ModuleNotFoundError as exc:  # an install without that component (a gateway) has none of its exits
            if exc.name and module.startswith(exc.name):
                continue
            raise
        contribute()


def use_of(exit_name: str) -> Use:
    """The declared use of ``exit_name`` (raises :class:`UndeclaredExit`)."""
    if exit_name not in EXITS:
        _contribute()
    try:
        return EXITS[exit_name]
    except KeyError:
        raise UndeclaredExit(f"exit {exit_name!r} is not declared in cityos.platform.exits.EXITS") from None


def consent_of(exit_name: str) -> tuple[str, str]:
    """(category, purpose) of a consent exit; an exit of another basis may not select consenting subjects."""
    use = use_of(exit_name)
    if use.basis != "consent" or use.category is None or use.purpose is None:
        raise UndeclaredExit(f"exit {exit_name!r} is declared {use.basis}, not consent-based")
    return use.category, use.purpose


def consent_filter(exit_name: str, subject_sql: str) -> str:
    """A SQL condition: ``subject_sql`` (a column such as ``d.owner_subject``) consented to the exit's purpose.

    The category and purpose come from the registry (fixed identifiers checked against the consent
    registry's lists, so they are safe to inline)."""
    category, purpose = consent_of(exit_name)
    return (f"{subject_sql} in (select s.subject_id from core.consenting_subjects('{category}', '{purpose}') "
            f"s(subject_id))")
