"""The layer and analysis declarations (cityos.gis.declarations) and what is derived from them, without servers."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityos.gis.declarations import Column, Layer, analyses, layers
from cityos.gis.loaders.report import LoadReport
from cityos.gis.loaders.run import _value, loadable
from cityos.gis.schema import table_ddl


def test_every_registry_is_derived_from_the_layer_declarations():
    from cityos.gis.app_data import LAYERS as APP_LAYERS
    from cityos.gis.collections import COLLECTIONS
    from cityos.gis.exports import EXPORTS
    from cityos.platform.exits import EXITS

    declared = layers()
    assert set(COLLECTIONS) == {name for name, layer in declared.items() if layer.ogc}
    assert {name for name, layer in declared.items() if layer.export} <= set(EXPORTS)
    assert set(loadable()) == {name for name, layer in declared.items() if layer.loadable}
    assert set(APP_LAYERS) <= set(COLLECTIONS)
    assert {f"ogc:{name}" for name in COLLECTIONS} <= set(EXITS)


def test_a_new_layer_is_one_file_the_evacuation_shelters():
    shelters = layers()["evacuation_shelters"]
    assert shelters.migration is None and shelters.style is not None and shelters.demo is not None
    statements = table_ddl(shelters)
    assert statements[0].startswith("create table gis.evacuation_shelters (id text primary key")
    assert "geom geometry(Point, 4326) not null" in statements[0]


def test_a_new_analysis_is_one_file_and_is_a_command_a_route_an_export_and_a_builder():
    from cityos.gis.api import router
    from cityos.gis.cli import app
    from cityos.gis.exports import EXPORTS
    from cityos.opendata.builders import BUILDERS
    from cityos.platform.audit import NOT_AUDITED

    coverage = analyses()["fire_water_coverage"]
    assert coverage.command in {c.name for c in app.registered_commands}
    assert coverage.path in {r.path for r in router.routes}
    assert "fire_water_coverage" in EXPORTS and "fire_water_coverage" in BUILDERS
    assert "cli:gis fire-water-coverage" in NOT_AUDITED


def test_no_builder_named_after_a_declared_analysis_or_its_dataset_is_hand_written():
    """A dataset of an analysis is its declaration's ``dataset=OpenData(...)``, derived, never a builder of its own."""
    from cityos.opendata.builders import BUILDERS, DERIVED

    declared = analyses()
    datasets = {a.open_data.builder: a.id for a in declared.values() if a.open_data}
    assert {"population_by_age": "population", "accident_hotspots": "hotspots",
            "fire_water_coverage": "fire_water_coverage"}.items() <= datasets.items()
    named = set(BUILDERS) & (set(declared) | set(datasets))
    assert named - set(DERIVED) == set(), "hand-written builders named after a declared analysis or its dataset"
    assert datasets == DERIVED


def test_a_second_builder_of_the_same_name_is_refused():
    from cityos.opendata.builders import BUILDERS, builder

    derived = BUILDERS["accident_hotspots"]
    with pytest.raises(ValueError, match="two builders are named 'accident_hotspots'"):
        builder("accident_hotspots")(lambda conn, ctx: derived(conn, ctx))
    assert BUILDERS["accident_hotspots"] is derived


def test_a_declared_dataset_takes_its_exit_and_the_telemetry_it_reads_from_the_declaration():
    from cityos.opendata.builders import READS
    from cityos.platform.exits import EXITS

    hotspots, population = analyses()["hotspots"], analyses()["population"]
    assert hotspots.exit_of("dataset") == "dataset:accident_hotspots"
    assert EXITS["dataset:accident_hotspots"] == hotspots.use
    assert EXITS["dataset:population_by_age"] == population.use and population.use.basis == "statutory"
    assert READS["accident_hotspots"] == ("telemetry.vehicle_positions",)
    assert "dataset:hotspots" not in EXITS and "dataset:population" not in EXITS


def test_every_gis_command_route_and_export_of_an_analysis_comes_from_a_declaration():
    """No analysis is wired by hand: the analyses' commands, routes and exports are exactly the declared ones."""
    from cityos.gis.api import router
    from cityos.gis.cli import app
    from cityos.gis.exports import EXPORTS

    declared = analyses()
    assert {"population", "bus_coverage", "hotspots", "snowplow_coverage", "energy_by_district",
            "vacant_houses"} <= set(declared)
    hand_commands = {"load-fire-water", "load", "export", "load-registry", "apply-registry-changes"}
    assert {c.name for c in app.registered_commands} - hand_commands == {a.command for a in declared.values()
                                                                          if a.cli}
    hand_routes = {"/api/v1/gis/registry/residents", "/api/v1/gis/exports/{layer}"}
    assert {r.path for r in router.routes} - hand_routes == (
        {a.path for a in declared.values() if a.api} | {a.staff_path for a in declared.values() if a.staff_exact})
    exported_layers = {name for name, layer in layers().items() if layer.export}
    assert set(EXPORTS) - exported_layers == {a.id for a in declared.values() if a.export}


def test_each_exit_of_a_consent_analysis_asks_for_its_own_purpose():
    from cityos.platform.exits import consent_of

    energy = analyses()["energy_by_district"]
    for channel in ("cli", "api", "export"):
        ctx = energy.context(10, ZoneInfo("Asia/Tokyo"), channel=channel)
        assert consent_of(ctx.exit) == ("energy", "open_data")
    assert energy.context(10, ZoneInfo("Asia/Tokyo"), channel="cli").exit == "cli:gis energy-by-district"


def test_a_staff_analysis_declares_its_scope_and_its_audited_access():
    from cityos.gis.declarations import Analysis
    from cityos.platform.audit import PERSONAL
    from cityos.platform.exits import STAFF

    vacant = analyses()["vacant_houses"]
    assert vacant.scope == "registry:read"
    assert {"cli:gis vacant-houses", "api:GET /api/v1/gis/vacant-houses",
            "api:GET /api/v1/gis/registry/population"} <= set(PERSONAL)
    with pytest.raises(ValueError, match="scope"):
        Analysis("x", "X", "X", lambda conn, ctx: [], use=STAFF, not_audited="no")


def test_a_parameter_of_one_exit_is_not_taken_by_another():
    hotspots = analyses()["hotspots"]
    assert hotspots.context(10, ZoneInfo("Asia/Tokyo"), channel="cli", latent_only=True).params == {
        "days": 365, "latent_only": True}
    with pytest.raises(ValueError, match="unknown parameters permutations"):
        hotspots.context(10, ZoneInfo("Asia/Tokyo"), channel="cli", permutations=9999)


def test_an_analysis_checks_its_parameters_by_their_declaration():
    coverage = analyses()["fire_water_coverage"]
    ctx = coverage.context(10, ZoneInfo("Asia/Tokyo"), datetime(2026, 1, 1, tzinfo=UTC), radius_m="120")
    assert ctx.params == {"radius_m": 120.0, "kind": None}
    with pytest.raises(ValueError, match="radius_m"):
        coverage.context(10, ZoneInfo("Asia/Tokyo"), radius_m=5)
    with pytest.raises(ValueError, match="unknown parameters"):
        coverage.context(10, ZoneInfo("Asia/Tokyo"), days=3)


def test_a_declaration_whose_key_is_not_a_column_is_refused():
    with pytest.raises(ValueError, match="key"):
        Layer("x", "gis.x", "X", "X", (Column("name"),), key="id")


@given(st.text(max_size=20))
def test_a_numeric_cell_is_a_number_or_unknown_never_an_exception(cell):
    report = LoadReport("x")
    value = _value(Column("capacity", "integer"), cell, 1, report)
    assert value is None or isinstance(value, int)


@pytest.mark.parametrize(("cell", "expected"), [("４５０", 450), ("1,200", 1200), ("", None), ("12.5", None)])
def test_numbers_in_city_files_are_read_with_full_width_digits_and_separators(cell, expected):
    assert _value(Column("capacity", "integer"), cell, 1, LoadReport("x")) == expected
