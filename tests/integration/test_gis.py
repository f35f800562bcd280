"""The unified GIS on the real PostGIS: loaders, OGC API Features read by GDAL, tiles, analyses."""

from __future__ import annotations

import json
import subprocess

import geopandas as gpd
import httpx
import psycopg
import pytest
from shapely.geometry import MultiPolygon, Point, Polygon

from cityos.gis.loaders.fire_water import read_fire_water
from cityos.gis.store import replace_layer
from cityos.platform.auth import create_token
from helpers import api_server

FIRE_WATER_CSV = (
    "全国地方公共団体コード,ID,地方公共団体名,種別,所在地_連結表記,緯度,経度,口径,備考\n"
    "072028,H001,会津若松市,消火栓,会津若松市栄町1-1,37.4950,139.9300,150,\n"
    "072028,H002,会津若松市,防火水槽,会津若松市栄町2-1,139.9310,37.4960,,1899/12/30\n"  # swapped
    "072028,H003,会津若松市,消火栓,会津若松市栄町3-1,,,75,\n"  # blank coordinates
    "072028,H004,会津若松市,消火栓,会津若松市栄町4-1,３７.４９７０,１３９.９３２０,75,\n"  # full-width digits
)


@pytest.fixture(scope="module")
def city(database_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("city")
    (folder / "fire_water.csv").write_bytes(FIRE_WATER_CSV.encode("cp932"))
    fire, report = read_fire_water(folder / "fire_water.csv")
    districts = gpd.GeoDataFrame(
        {"code": ["07202-001", "07202-002"], "name_ja": ["栄町", "門田町"], "name_en": ["Sakaemachi", "Monden"],
         "area_m2": [1.0, 1.0]},
        geometry=[MultiPolygon([Polygon([(139.92, 37.49), (139.935, 37.49), (139.935, 37.50), (139.92, 37.50)])]),
                  MultiPolygon([Polygon([(139.935, 37.49), (139.95, 37.49), (139.95, 37.50), (139.935, 37.50)])])],
        crs="EPSG:4326")
    stops = gpd.GeoDataFrame({"stop_id": [f"S{i}" for i in range(25)], "name": [f"停留所{i}" for i in range(25)],
                              "boardings_per_day": [10.0 * i for i in range(25)]},
                             geometry=[Point(139.92 + i * 0.001, 37.495) for i in range(25)], crs="EPSG:4326")
    addresses = gpd.GeoDataFrame({"address_id": ["A1", "A2"], "district_code": ["07202-001", "07202-002"]},
                                 geometry=[Point(139.93, 37.495), Point(139.94, 37.495)], crs="EPSG:4326")
    with psycopg.connect(database_url) as conn:
        replace_layer(conn, "gis.fire_water", fire, ["id", "kind", "address", "diameter", "note", "attributes"])
        replace_layer(conn, "gis.districts", districts, ["code", "name_ja", "name_en", "area_m2"])
        replace_layer(conn, "gis.bus_stops", stops, ["stop_id", "name", "boardings_per_day"])
        replace_layer(conn, "gis.addresses", addresses, ["address_id", "district_code"])
        conn.execute("delete from registry.residents")
        conn.execute("""insert into registry.residents
                            (person_id, household_id, district_code, address_id, birth_date, sex)
                        select 'P' || i, 'H' || (i / 3), case when i <= 40 then '07202-001' else '07202-002' end,
                               case when i <= 40 then 'A1' else 'A2' end,
                               case when i % 4 = 0 then date '1945-01-01' else date '1990-01-01' end, 'F'
                        from generate_series(1, 46) i""")
        conn.commit()
    return report


@pytest.fixture(scope="module")
def api(city, api):  # the shared API (tests/conftest.py), started once the city is loaded
    return api


@pytest.fixture(scope="module")
def cached_api(city, database_url, test_broker, tmp_path_factory):
    """The API with the production micro-cache on (answers shared between clients for 30 s)."""
    env = {"CITYOS_DATABASE_URL": database_url, "CITYOS_MQTT_URL": test_broker.url, "CITYOS_API_CACHE_S": "30",
           "CITYOS_HOME": str(tmp_path_factory.mktemp("gis-cached"))}
    with api_server(env) as base:
        yield base


def test_fire_water_loader_repairs_swapped_coordinates_and_refuses_blank_ones(city):
    assert city.loaded == 3
    assert sorted({r["line"] for r in city.repaired}) == [3]
    assert [r["line"] for r in city.refused] == [4]
    assert city.encoding == "CP932 (Shift_JIS)"


def test_gdal_reads_the_layers_through_oapif(api):
    result = subprocess.run(["ogrinfo", "-ro", "-so", f"OAPIF:{api}/ogc", "fire_water"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "Feature Count: 3" in result.stdout


def test_gdal_lists_every_public_collection(api):
    result = subprocess.run(["ogrinfo", "-ro", "-q", f"OAPIF:{api}/ogc"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    for name in ("districts", "fire_water", "bus_stops", "snowplows"):
        assert name in result.stdout


def test_items_filter_by_bbox_and_page_with_next_links(api):
    first = httpx.get(f"{api}/ogc/collections/bus_stops/items", params={"limit": 10}).json()
    assert first["numberMatched"] == 25 and first["numberReturned"] == 10
    nxt = next(link["href"] for link in first["links"] if link["rel"] == "next")
    second = httpx.get(nxt).json()
    assert not {f["id"] for f in second["features"]} & {f["id"] for f in first["features"]}
    boxed = httpx.get(f"{api}/ogc/collections/bus_stops/items", params={"bbox": "139.9195,37.49,139.9215,37.50"})
    assert sorted(f["id"] for f in boxed.json()["features"]) == ["S0", "S1"]


def test_bbox_accepts_the_six_number_form_with_heights(api):
    assert _ids(api, "bus_stops", bbox="139.9195,37.49,-10,139.9215,37.50,500") == ["S0", "S1"]


def test_bbox_tests_the_geometry_not_its_bounding_box(api, database_url):
    """A triangle whose bounding box meets the query box while the triangle itself does not."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("insert into gis.districts (code, name_ja, name_en, area_m2, geom) values ('07202-099', '三角',"
                     " 'Triangle', 1, st_multi(st_geomfromtext('POLYGON((139.96 37.49, 139.98 37.49, 139.96 37.51,"
                     " 139.96 37.49))', 4326)))")
        try:
            corner = _ids(api, "districts", bbox="139.975,37.505,139.98,37.51")
            inside = _ids(api, "districts", bbox="139.961,37.491,139.962,37.492")
        finally:
            conn.execute("delete from gis.districts where code = '07202-099'")
    assert corner == [] and inside == ["07202-099"]


def _ids(api: str, collection: str, **params) -> list[str]:
    response = httpx.get(f"{api}/ogc/collections/{collection}/items", params=params)
    assert response.status_code == 200, response.text
    return sorted(f["id"] for f in response.json()["features"])


def test_items_filter_by_cql2_text_on_properties(api):
    assert _ids(api, "fire_water", filter="kind = '消火栓'") == ["H001", "H004"]
    assert _ids(api, "fire_water", filter="kind = '消火栓' AND diameter = '150'") == ["H001"]


def test_items_filter_by_cql2_json_with_a_spatial_test(api):
    box = {"op": "s_intersects", "args": [{"property": "geom"}, {"bbox": [139.9195, 37.49, 139.9215, 37.50]}]}
    assert _ids(api, "bus_stops", filter=json.dumps(box), **{"filter-lang": "cql2-json"}) == ["S0", "S1"]


def test_next_links_keep_the_filter(api):
    first = httpx.get(f"{api}/ogc/collections/bus_stops/items",
                      params={"filter": "boardings_per_day >= 100", "limit": 10}).json()
    assert first["numberMatched"] == 15
    second = httpx.get(next(link["href"] for link in first["links"] if link["rel"] == "next")).json()
    assert second["numberReturned"] == 5
    assert all(f["properties"]["boardings_per_day"] >= 100 for f in second["features"])


@pytest.mark.parametrize("bad", ["secret = 1", "kind > 5", "pg_sleep(1) = 1", "kind ="])
def test_a_filter_that_cannot_be_served_is_a_client_error(api, bad):
    response = httpx.get(f"{api}/ogc/collections/fire_water/items", params={"filter": bad})
    assert response.status_code == 400, response.text
    assert response.json()["detail"]


@pytest.mark.parametrize(("text", "lang"), [
    ("NOT (" * 1100 + "kind = 'x'" + ")" * 1100, "cql2-text"),
    ("(" * 2000 + "kind = 'x'" + ")" * 2000, "cql2-text"),
    ('{"op": "not", "args": [' * 600 + '{"op": "=", "args": [{"property": "kind"}, "x"]}' + "]}" * 600, "cql2-json"),
])
def test_a_deeply_nested_filter_gets_400_and_the_api_stays_up(api, text, lang):
    response = httpx.get(f"{api}/ogc/collections/fire_water/items", params={"filter": text, "filter-lang": lang})
    assert response.status_code == 400, response.text
    assert "nests" in response.json()["detail"]
    assert httpx.get(f"{api}/healthz").status_code == 200


def test_queryables_describe_the_filterable_properties(api):
    body = httpx.get(f"{api}/ogc/collections/fire_water/queryables").json()
    assert body["properties"]["kind"]["type"] == "string"
    assert body["properties"]["geom"]["format"] == "geometry-any"
    assert body["additionalProperties"] is False


def test_vector_tile_holds_the_layer(api):
    import math

    import mapbox_vector_tile

    lon, lat, z = 139.931, 37.496, 14
    x = int((lon + 180) / 360 * 2**z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)
    resp = httpx.get(f"{api}/ogc/tiles/fire_water/{z}/{x}/{y}.pbf")
    assert resp.status_code == 200
    decoded = mapbox_vector_tile.decode(resp.content)
    assert len(decoded["fire_water"]["features"]) == 3


def test_population_per_district_suppresses_small_cells(api):
    rows = {r["district_code"]: r for r in httpx.get(f"{api}/api/v1/gis/population").json()["items"]}
    assert rows["07202-001"]["total"] == 40
    assert rows["07202-001"]["age_75_plus"] == 10 and rows["07202-001"]["age_15_64"] == 30
    assert rows["07202-002"]["total"] is None  # 6 residents: below k = 10


def test_raw_registry_rows_need_the_registry_scope_and_are_audited(api, database_url):
    assert httpx.get(f"{api}/api/v1/gis/registry/residents", params={"district_code": "07202-001"}).status_code == 401
    with psycopg.connect(database_url, autocommit=True) as conn:
        token = create_token(conn, "planner-1", ["registry:read"])
    resp = httpx.get(f"{api}/api/v1/gis/registry/residents", params={"district_code": "07202-001"},
                     headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200 and len(resp.json()) == 40
    with psycopg.connect(database_url) as conn:
        audited = conn.execute("select count(*) from core.audit_log where actor = 'planner-1' "
                               "and resource = '/api/v1/gis/registry/residents'").fetchone()[0]
    assert audited == 1


def test_a_personal_data_read_is_audited_with_its_query_parameters(api, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        token = create_token(conn, "planner-query", ["registry:read"])
    httpx.get(f"{api}/api/v1/gis/registry/residents", params={"district_code": "07202-002", "limit": 7},
              headers={"Authorization": f"Bearer {token}"})
    with psycopg.connect(database_url) as conn:
        detail = conn.execute("select detail from core.audit_log where actor = 'planner-query'").fetchone()[0]
    assert detail["query"] == {"district_code": "07202-002", "limit": "7"}


def test_a_failed_token_attempt_is_audited_without_the_token(api, database_url):
    attempt = "cty_guessed-" + "x" * 20
    response = httpx.get(f"{api}/api/v1/gis/registry/residents", params={"district_code": "07202-001"},
                         headers={"Authorization": f"Bearer {attempt}"})
    assert response.status_code == 401
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("select actor, detail::text, client_addr from core.audit_log "
                            "where action = 'invalid_token' and detail->'query'->>'district_code' = '07202-001'"
                            ).fetchall()
    assert rows and rows[-1][0] == "anonymous" and rows[-1][2] == "127.0.0.1"
    assert attempt not in rows[-1][1] and "token_hash_prefix" in rows[-1][1]


def test_anonymous_callers_get_a_bounded_number_of_permutations(api):
    anonymous = httpx.get(f"{api}/api/v1/gis/hotspots", params={"permutations": 9999, "days": 1})
    assert anonymous.status_code == 400 and "API key" in anonymous.json()["detail"]
    assert httpx.get(f"{api}/api/v1/gis/hotspots", params={"permutations": 999, "days": 1},
                     timeout=120).status_code == 200
    key = httpx.post(f"{api}/api/v1/keys", json={"name": "analyst", "contact": "a@example.org"}).json()["api_key"]
    keyed = httpx.get(f"{api}/api/v1/gis/hotspots", params={"permutations": 9999, "days": 1},
                      headers={"X-API-Key": key}, timeout=120)
    assert keyed.status_code == 200


def test_bus_coverage_per_district(api):
    rows = {r["district_code"]: r for r in httpx.get(f"{api}/api/v1/gis/bus-coverage").json()["items"]}
    assert rows["07202-001"]["within_300m"] == 40
    assert json.dumps(rows)  # serialisable (no NaN)


def test_a_public_layer_exports_to_a_geopackage_through_the_cli(city, database_url, tmp_path):
    import os
    import sys

    import pyogrio

    out = tmp_path / "fire_water.gpkg"
    done = subprocess.run([sys.executable, "-m", "cityos.platform.cli", "gis", "export", "fire_water", "-f", "gpkg",
                           "-o", str(out)], env={**os.environ, "CITYOS_DATABASE_URL": database_url},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    layer = pyogrio.read_dataframe(out)
    assert {"H001", "H002", "H004"} <= set(layer["id"]) and layer.crs.to_epsg() == 4326


def test_an_analysis_result_exports_as_geojson_with_small_cells_suppressed(api):
    response = httpx.get(f"{api}/api/v1/gis/exports/population?format=geojson", timeout=60)
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    features = response.json()["features"]
    assert {f["properties"]["district_code"] for f in features} <= {"07202-001", "07202-002"}
    for feature in features:
        for column in ("age_0_14", "age_15_64", "age_65_74", "age_75_plus", "total"):
            value = feature["properties"][column]
            assert value is None or value == 0 or value >= 10


def test_raw_registry_rows_are_not_an_exportable_layer(api):
    assert httpx.get(f"{api}/api/v1/gis/exports/residents").status_code == 404


def test_qgis_reads_a_collection_through_its_oapif_provider(api, database_url):
    from pathlib import Path

    script = Path(__file__).with_name("qgis") / "read_oapif.py"
    done = subprocess.run(["/usr/bin/python3", str(script), f"{api}/ogc", "bus_stops"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    with psycopg.connect(database_url) as conn:
        stops = conn.execute("select count(*) from gis.bus_stops").fetchone()[0]
    assert result == {"valid": True, "features": stops, "fields": ["id", "stop_id", "name", "boardings_per_day"],
                      "crs": "EPSG:4326", "error": ""}


@pytest.mark.parametrize("path", ["/ogc/collections/bus_stops/items?limit=10", "/ogc/collections", "/ogc"])
def test_a_forged_host_header_points_no_link_elsewhere_for_anyone(cached_api, path):
    forged = httpx.get(cached_api + path, headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"})
    honest = httpx.get(cached_api + path)  # within the cache window: possibly the forged request's answer
    for body in (forged.text, honest.text):
        assert "evil.example" not in body
    hrefs = [link["href"] for link in honest.json()["links"]]
    assert hrefs and all(h.startswith(cached_api + "/") for h in hrefs)
