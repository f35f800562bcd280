"""Every exit of the platform names the purpose it serves (cityos.platform.exits), and one check enforces it.

A new API route, live feed, public MQTT topic, export, OGC collection or dataset source fails here until
it is declared in ``EXITS``; a query that selects consenting residents by spelling a purpose itself (instead
of asking the registry through ``consent_filter``) fails ``test_only_the_registry_reads_the_consent_view``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from cityos.platform.exits import EXITS, UndeclaredExit, consent_filter, consent_of, use_of

REPO = Path(__file__).resolve().parents[2]


def _api_exits() -> set[str]:
    """Every HTTP and WebSocket route: those of each mounted router, and the application's own."""
    from cityos.platform.api.app import ROUTERS, _load, create_app
    from cityos.platform.settings import load_settings

    app = create_app(load_settings(), maintenance=False)
    routes = [route for spec in ROUTERS for route in _load(spec).routes] + list(app.routes)
    found = set()
    for route in routes:
        if isinstance(route, APIWebSocketRoute):
            found.add(f"api:WEBSOCKET {route.path}")
        elif isinstance(route, APIRoute | Route):
            found |= {f"api:{method} {route.path}" for method in route.methods or () if method != "HEAD"}
        elif isinstance(route, Mount) and isinstance(route.app, StaticFiles):
            continue  # the apps' static files: code, no data
    openapi = {f"api:{method.upper()} {path}" for path, ops in app.openapi()["paths"].items() for method in ops}
    assert openapi <= found, "the walk missed routes the OpenAPI document has"
    return found


def _declared(prefix: str) -> set[str]:
    return {name for name in EXITS if name.startswith(prefix)}


def test_every_api_route_and_live_feed_names_its_purpose():
    routes = _api_exits()
    assert routes - set(EXITS) == set(), "new routes: declare them in cityos.platform.exits.EXITS"
    assert _declared("api:") - routes == set(), "EXITS names routes that no longer exist"


def test_every_public_mqtt_topic_names_its_purpose():
    from cityos.ingest.public_feed import TOPICS
    from cityos.sta.mqtt import TOPICS as STA_TOPICS

    assert {f"mqtt:{t}" for t in (*TOPICS, *STA_TOPICS)} == _declared("mqtt:")


def test_every_export_and_ogc_collection_names_its_purpose():
    from cityos.gis.collections import COLLECTIONS
    from cityos.gis.exports import EXPORTS

    assert {f"export:{name}" for name in EXPORTS} == _declared("export:")
    assert {f"ogc:{name}" for name in COLLECTIONS} == _declared("ogc:")


def test_every_dataset_source_names_its_purpose_and_its_definition_agrees():
    from cityos.opendata.build import exit_use
    from cityos.opendata.builders import BUILDERS
    from cityos.opendata.definitions import load_definitions

    shipped = {name for name in BUILDERS if not name.startswith("test_")}
    assert {f"dataset:{name}" for name in shipped} <= _declared("dataset:")
    for definition in load_definitions():
        exit_use(definition)  # raises when the file and the registry disagree


def test_a_definition_that_claims_another_purpose_is_refused():
    from cityos.opendata.build import exit_use
    from cityos.opendata.definitions import load_definitions

    energy = next(d for d in load_definitions() if d.source.builder == "energy_by_district_day")
    research = energy.model_copy(update={"anonymisation": energy.anonymisation.model_copy(
        update={"consent": energy.anonymisation.consent.model_copy(update={"purpose": "research"})})})
    with pytest.raises(UndeclaredExit, match="registry"):
        exit_use(research)


def test_public_energy_exits_serve_open_data_only():
    public = [name for name, use in EXITS.items() if use.basis == "consent" and name != "api:GET /api/v1/energy/my"]
    assert public and all(consent_of(name)[1] == "open_data" for name in public)


def test_an_undeclared_or_non_consent_exit_cannot_select_consenting_subjects():
    with pytest.raises(UndeclaredExit):
        consent_filter("api:GET /api/v1/nowhere", "d.owner_subject")
    with pytest.raises(UndeclaredExit):
        consent_filter("api:GET /api/v1/gis/population", "d.owner_subject")
    assert "'energy', 'open_data'" in consent_filter("api:GET /api/v1/gis/energy-by-district", "d.owner_subject")
    assert use_of("mqtt:cityos/public/v1/energy/districts").purpose == "open_data"


#: The only places that may read the consent view: the registry itself, the exit helper's SQL function,
#: and ingest's admission (intake of health readings, not an exit).
CONSENT_READERS = {"platform/consent.py", "platform/exits.py", "ingest/admission.py"}


def test_only_the_registry_reads_the_consent_view():
    readers = set()
    for folder in ("platform", "ingest", "gis", "sta", "opendata", "deploy", "apps"):
        for path in (REPO / folder).rglob("*.py"):
            if "consents_current" in path.read_text(encoding="utf-8") or \
                    "core.consenting_subjects(" in path.read_text(encoding="utf-8"):
                readers.add(str(path.relative_to(REPO)))
    assert readers <= CONSENT_READERS, f"select consenting residents with consent_filter: {readers - CONSENT_READERS}"
