"""OGC clients without a key read whole layers: GDAL pages 10 features at a time within the anonymous rate."""

from __future__ import annotations

import json
import subprocess

import psycopg
import pytest

#: The module replaces the whole hydrant layer: the API runs on a database of its own, without a broker.
API_DATABASE = "private_database_url"
API_BROKER = False
API_ENV = {"CITYOS_ANONYMOUS_RATE_PER_MINUTE": "60"}


@pytest.fixture(scope="module")
def hydrants(private_database_url) -> None:
    """2000 hydrants and nothing else in the layer."""
    with psycopg.connect(private_database_url, autocommit=True) as conn:
        conn.execute("delete from gis.fire_water")
        conn.execute("insert into gis.fire_water (id, kind, geom) select 'HY' || lpad(i::text, 4, '0'), '消火栓', "
                     "st_setsrid(st_point(139.90 + (i % 50) * 0.001, 37.48 + (i / 50) * 0.001), 4326) "
                     "from generate_series(1, 2000) i")


@pytest.fixture(scope="module")
def api(hydrants, api):  # the shared API (tests/conftest.py) on API_DATABASE, started once the hydrants exist
    return api


def test_gdal_reads_all_2000_hydrants_without_a_key(api, tmp_path):
    out = tmp_path / "hydrants.geojson"
    result = subprocess.run(["ogr2ogr", "-f", "GeoJSON", str(out), f"OAPIF:{api}/ogc", "fire_water"],
                            capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr
    assert "429" not in result.stderr
    features = json.loads(out.read_text())["features"]
    assert len(features) == 2000
    assert len({f["properties"]["id"] for f in features}) == 2000
