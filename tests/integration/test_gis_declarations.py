"""The GIS layer and analysis declarations on the real PostGIS: each declaration matches its table, a layer
declared in one file (``gis/layers/evacuation_shelters.py``) gets its table, loader, OGC collection, export
and staff-map style, and an analysis declared in one file (``gis/analyses/declared/fire_water_coverage.py``)
answers on the command line, the API, the export and as an open-data builder, with the same figures."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import geopandas as gpd
import httpx
import psycopg
import pytest
from shapely.geometry import MultiPolygon, Point, box

from cityos.gis.declarations import analyses, layers
from cityos.gis.schema import ensure_tables
from cityos.gis.store import replace_layer

SHELTERS_CSV = (
    "ID,名称,種別,所在地_連結表記,緯度,経度,収容人数,備考\n"
    "S01,鶴城小学校,指定避難所,会津若松市城東町1-1,37.4880,139.9350,450,体育館\n"
    "S02,栄町集会所,指定緊急避難場所,会津若松市栄町2-2,139.9290,37.4960,60,\n"  # swapped coordinates
    "S03,座標なし公民館,指定避難所,会津若松市,,,100,\n"  # refused: no position
)
#: The API runs on this module's own database, where ``city`` replaces whole layers.
API_DATABASE = "private_database_url"


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CITYOS_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "cityos.platform.cli", "gis", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def _columns(conn: psycopg.Connection, table: str) -> set[tuple[str, str, bool]]:
    rows = conn.execute("select attname, format_type(atttypid, atttypmod), attnotnull from pg_attribute "
                        "where attrelid = %s::regclass and attnum > 0 and not attisdropped and attname <> 'geom'",
                        (table,)).fetchall()
    return {(name, type_, not_null) for name, type_, not_null in rows}


def _declared(layer, is_view: bool) -> set[tuple[str, str, bool]]:
    return {(c.name, c.type, c.not_null and not is_view) for c in layer.columns}


@pytest.mark.parametrize("name", sorted(layers()))
def test_each_layer_declaration_matches_its_table_column_for_column(database_url, name):
    layer = layers()[name]
    with psycopg.connect(database_url) as conn:
        kind = conn.execute("select relkind from pg_class where oid = %s::regclass", (layer.table,)).fetchone()[0]
        assert _columns(conn, layer.table) == _declared(layer, kind == "v")
        geometry = conn.execute("select type from geometry_columns where f_table_schema || '.' || f_table_name = %s",
                                (layer.table,)).fetchone()
    if layer.geometry is None:
        assert geometry is None
    elif kind == "r":
        assert geometry[0] == layer.geometry.upper()


def test_a_layer_without_a_migration_gets_its_table_and_ensuring_it_again_changes_nothing(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        before = _columns(conn, "gis.evacuation_shelters")
        assert ensure_tables(conn) == []
        assert _columns(conn, "gis.evacuation_shelters") == before
        assert conn.execute("select count(*) from pg_indexes where tablename = 'evacuation_shelters' "
                            "and indexdef like '%gist (geom)%'").fetchone()[0] == 1


def test_a_column_added_to_a_declaration_is_added_to_its_table(private_database_url):
    from dataclasses import replace

    from cityos.gis.declarations import Column
    from cityos.gis.schema import table_ddl

    shelters = layers()["evacuation_shelters"]
    grown = replace(shelters, columns=(*shelters.columns, Column("phone")))
    with psycopg.connect(private_database_url, autocommit=True) as conn:
        existing = {name for name, *_ in _columns(conn, shelters.table)}
        statements = table_ddl(grown, existing)
        assert statements == ["alter table gis.evacuation_shelters add column phone text"]
        with conn.transaction():
            for statement in statements:
                conn.execute(statement)
            assert ("phone", "text", False) in _columns(conn, shelters.table)
            conn.execute("alter table gis.evacuation_shelters drop column phone")


@pytest.fixture(scope="module")
def city(private_database_url, tmp_path_factory):
    """Two 1 km districts side by side; three hydrants and a cistern in the west one, none in the east."""
    west, east = box(0, 0, 1000, 1000), box(1000, 0, 2000, 1000)
    centre = (-20_000.0, 50_000.0)  # near Aizuwakamatsu in EPSG:6677
    shift = lambda g: MultiPolygon([gpd.GeoSeries([g], crs="EPSG:6677").translate(*centre).iloc[0]])  # noqa: E731
    districts = gpd.GeoDataFrame({"code": ["07202-001", "07202-002"], "name_ja": ["西町", "東町"],
                                  "name_en": ["Nishi", "Higashi"], "area_m2": [1e6, 1e6]},
                                 geometry=[shift(west), shift(east)], crs="EPSG:6677").to_crs("EPSG:4326")
    points = [(200, 500, "消火栓"), (500, 500, "消火栓"), (500, 200, "消火栓"), (300, 800, "防火水槽")]
    fire = gpd.GeoDataFrame({"id": [f"H{i}" for i in range(4)], "kind": [k for *_, k in points], "address": "",
                             "diameter": "", "note": "", "attributes": [{}] * 4},
                            geometry=[Point(x + centre[0], y + centre[1]) for x, y, _ in points],
                            crs="EPSG:6677").to_crs("EPSG:4326")
    with psycopg.connect(private_database_url) as conn:
        replace_layer(conn, "gis.districts", districts, ["code", "name_ja", "name_en", "area_m2"])
        replace_layer(conn, "gis.fire_water", fire, ["id", "kind", "address", "diameter", "note", "attributes"])
        conn.commit()
    shelters = tmp_path_factory.mktemp("shelters") / "指定避難所一覧.csv"
    shelters.write_bytes(SHELTERS_CSV.encode("cp932"))
    return private_database_url, shelters


@pytest.fixture(scope="module")
def api(city, api):  # the shared API (tests/conftest.py) on API_DATABASE, started once the city is loaded
    return api


def test_a_new_layer_file_is_loaded_from_a_city_csv_by_its_declared_column_names(city):
    url, shelters = city
    done = _cli(url, "load", "evacuation_shelters", str(shelters))
    assert done.returncode == 0, done.stdout + done.stderr
    with psycopg.connect(url) as conn:
        rows = conn.execute("select id, name, kind, capacity, note, st_y(geom)::numeric(8, 4) "
                            "from gis.evacuation_shelters order by id").fetchall()
    assert [r[:5] for r in rows] == [("S01", "鶴城小学校", "指定避難所", 450, "体育館"),
                                     ("S02", "栄町集会所", "指定緊急避難場所", 60, "")]
    assert float(rows[1][5]) == 37.496  # the swapped row was repaired


def test_the_new_layer_is_an_ogc_collection_an_export_and_a_staff_map_layer(city, api):
    _cli(city[0], "load", "evacuation_shelters", str(city[1]))
    items = httpx.get(f"{api}/ogc/collections/evacuation_shelters/items", timeout=30).json()
    assert {f["id"]: f["properties"]["capacity"] for f in items["features"]} == {"S01": 450, "S02": 60}
    listed = httpx.get(f"{api}/ogc/collections", timeout=30).json()["collections"]
    assert "指定避難所" in next(c["description"] for c in listed if c["id"] == "evacuation_shelters")
    exported = httpx.get(f"{api}/api/v1/gis/exports/evacuation_shelters?format=geojson", timeout=30).json()
    assert sorted(f["properties"]["name"] for f in exported["features"]) == ["栄町集会所", "鶴城小学校"]
    manifest = httpx.get(f"{api}/apps/data/manifest.json", timeout=30).json()
    assert manifest["styles"]["evacuation_shelters"]["kind"] == "circle"
    drawn = httpx.get(f"{api}{manifest['layers']['evacuation_shelters']}", timeout=30).json()
    assert len(drawn["features"]) == 2


EXPECTED = {  # radius 140 m: west has 4 facilities (3 hydrants), east none and no facility within reach
    "07202-001": {"facilities": 4, "hydrants": 3, "cisterns": 1, "per_km2": 4.0},
    "07202-002": {"facilities": 0, "hydrants": 0, "cisterns": 0, "per_km2": 0.0, "covered_share": 0.0},
}


def _check(rows: list[dict]) -> None:
    by_code = {r["district_code"]: r for r in rows}
    for code, expected in EXPECTED.items():
        assert {k: float(by_code[code][k]) for k in expected} == pytest.approx(expected, abs=0.02)
    # four 140 m discs, two of them overlapping, inside 1 km²: between one disc (0.0616) and four
    assert 0.15 < float(by_code["07202-001"]["covered_share"]) < 0.25


def test_a_declared_analysis_prints_its_rows_on_the_command_line(city):
    done = _cli(city[0], "fire-water-coverage")
    assert done.returncode == 0, done.stdout + done.stderr
    _check(list(csv.DictReader(io.StringIO(done.stdout))))


def test_a_declared_analysis_refuses_a_parameter_out_of_range_on_the_command_line(city):
    done = _cli(city[0], "fire-water-coverage", "--radius-m", "5")
    assert done.returncode == 2 and "radius" in (done.stdout + done.stderr)


def test_a_declared_analysis_answers_its_api_route_and_filters_by_its_typed_parameters(api):
    answer = httpx.get(f"{api}/api/v1/gis/fire-water-coverage", timeout=60)
    assert answer.status_code == 200
    _check(answer.json()["items"])
    hydrants = httpx.get(f"{api}/api/v1/gis/fire-water-coverage", params={"kind": "防火水槽"}, timeout=60).json()
    assert {r["district_code"]: r["facilities"] for r in hydrants["items"]} == {"07202-001": 1, "07202-002": 0}
    assert httpx.get(f"{api}/api/v1/gis/fire-water-coverage?radius_m=abc", timeout=30).status_code == 422
    assert httpx.get(f"{api}/api/v1/gis/fire-water-coverage?radius_m=5000", timeout=30).status_code == 422


def test_a_declared_analysis_is_exported_with_its_districts_outlines(api):
    exported = httpx.get(f"{api}/api/v1/gis/exports/fire_water_coverage?format=geojson", timeout=60)
    assert exported.status_code == 200
    features = json.loads(exported.content)["features"]
    assert {f["geometry"]["type"] for f in features} == {"MultiPolygon"}
    _check([f["properties"] for f in features])


def test_a_declared_analysis_is_an_open_data_builder_with_the_same_rows(city):
    from cityos.opendata.builders import BUILDERS, BuildContext
    from cityos.opendata.definitions import load_portal

    ctx = BuildContext(portal=load_portal(), k=10, now=datetime.now(UTC), params={"radius_m": 140})
    with psycopg.connect(city[0]) as conn:
        table = BUILDERS["fire_water_coverage"](conn, ctx)
    _check(table.frame.to_dict(orient="records"))
    assert "fire_water_coverage" in analyses()


#: Harsh brakes planted per vehicle: (device, public, where, how many).
BRAKES = [("t-hs-plow", True, (139.93, 37.49), 2), ("t-hs-car", False, (139.95, 37.50), 3)]


def test_the_accident_hotspots_dataset_counts_public_vehicles_only_and_the_export_every_city_vehicle(city):
    from zoneinfo import ZoneInfo

    from cityos.opendata.builders import BUILDERS, BuildContext
    from cityos.opendata.definitions import load_portal

    now = datetime.now(UTC)
    with psycopg.connect(city[0], autocommit=True) as conn:
        try:
            for device, public, (lon, lat), count in BRAKES:
                conn.execute("insert into core.devices (device_id, domain, kind, public) values (%s, 'vehicle', "
                             "'snowplow', %s)", (device, public))
                for minute in range(count):
                    conn.execute("insert into telemetry.vehicle_positions (time, device_id, geom, accel_long) values "
                                 "(%s, %s, st_setsrid(st_point(%s, %s), 4326), -5)",
                                 (now - timedelta(minutes=60 + minute), device, lon, lat))
            ctx = BuildContext(portal=load_portal(), k=10, now=now, params={"days": 30, "permutations": 99})
            dataset = BUILDERS["accident_hotspots"](conn, ctx).frame
            hotspots = analyses()["hotspots"]
            declared = hotspots.context(10, ZoneInfo("Asia/Tokyo"), now, channel="export", days=30)
            export = hotspots.view("export", hotspots.run(conn, declared), declared)
        finally:
            conn.execute("delete from telemetry.vehicle_positions where device_id like 't-hs-%'")
            conn.execute("delete from core.devices where device_id like 't-hs-%'")
    assert list(dataset.columns) == ["cell", "harsh_brakes", "accidents", "gi_z", "gi_p", "hot", "latent", "lat",
                                     "lon", "geometry"]
    assert dataset["harsh_brakes"].sum() == 2 and len(dataset) == 1
    assert dataset["geometry"][0]["type"] == "Polygon"
    assert export["harsh_brakes"].sum() == 5
