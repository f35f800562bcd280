"""Loading real municipal files through the CLI into PostGIS: the boundary layer, per-row reports,
--dry-run, atomic replacement only on success, duplicate IDs by line, no traceback whatever the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from cityos.gis.democity import HYDRANTS_FILE

DATA = Path(__file__).resolve().parents[1] / "data"


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CITYOS_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "cityos.platform.cli", "gis", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"select count(*) from {table}").fetchone()[0]


@pytest.fixture(scope="module")
def city(private_database_url):
    done = _cli(private_database_url, "load", "boundary", str(DATA / "boundaries" / "n03_2021_s0010_selected.geojson"),
                "--code", "07202")
    assert done.returncode == 0, done.stdout + done.stderr
    return private_database_url


def test_the_boundary_layer_holds_aizuwakamatsu(city):
    with psycopg.connect(city) as conn:
        row = conn.execute("select code, name, round(st_area(geom::geography) / 1e6) from gis.boundary").fetchall()
    assert row == [("07202", "会津若松市", 380)]  # simplified outline; officially 382.97 km2


def test_the_2014_hydrants_load_with_a_summary_and_a_full_report_file(city, tmp_path):
    report = tmp_path / "report.json"
    done = _cli(city, "load-fire-water", str(HYDRANTS_FILE), "--report", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1974 rows: 1974 accepted" in done.stdout
    assert _count(city, "gis.fire_water") == 1974
    written = json.loads(report.read_text())
    assert written["loaded"] == 1974 and written["encoding"] == "UTF-8"
    assert written["repaired"][0]["line"] == 1974


def test_a_dry_run_reports_every_row_and_changes_nothing(city, tmp_path):
    before = _count(city, "gis.fire_water")
    path = tmp_path / "fw.csv"
    path.write_text("ID,種別,緯度,経度\nH1,消火栓,37.4950,139.9300\nH2,消火栓,37.5665,126.9780\n"
                    "H1,防火水槽,37.4960,139.9310\n", encoding="cp932")
    done = _cli(city, "load-fire-water", str(path), "--dry-run", "--report", str(tmp_path / "r.json"))
    assert done.returncode == 0
    assert "[dry run: nothing stored]" in done.stdout
    assert "line 3: refused: position 37.5665, 126.978 is" in done.stdout and "outside 会津若松市" in done.stdout
    assert "line 4: refused: duplicate ID 'H1' (first on line 2)" in done.stdout
    assert _count(city, "gis.fire_water") == before


def test_duplicate_ids_are_refused_by_line_without_a_unique_violation(city, tmp_path):
    path = tmp_path / "dups.csv"
    path.write_text("ID,種別,緯度,経度\nH1,消火栓,37.4950,139.9300\nH1,防火水槽,37.4960,139.9310\n")
    done = _cli(city, "load-fire-water", str(path), "--report", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stderr
    assert "UniqueViolation" not in done.stdout + done.stderr
    assert "line 3: refused: duplicate ID 'H1' (first on line 2)" in done.stdout
    assert _count(city, "gis.fire_water") == 1
    _cli(city, "load-fire-water", str(HYDRANTS_FILE), "--report", str(tmp_path / "again.json"))


@pytest.mark.parametrize("content", [b"\x00\xff\xfe garbage \x81", b"name,kind\nA,B\n", b""])
def test_a_file_refused_as_a_whole_leaves_the_layer_as_it_was_and_prints_no_traceback(city, tmp_path, content):
    before = _count(city, "gis.fire_water")
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    done = _cli(city, "load-fire-water", str(path), "--report", str(tmp_path / "r.json"))
    assert done.returncode == 2
    assert "refused as a whole" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert _count(city, "gis.fire_water") == before


def test_gtfs_stops_txt_loads_as_bus_stops_with_weekday_departures(city, tmp_path):
    """The issue's exact move: `cityos gis load bus_stops stops.txt` (Muroran is outside the boundary, so
    the boundary is swapped for this test and put back)."""
    with psycopg.connect(city) as conn:
        conn.execute("create table saved_boundary as select * from gis.boundary")
        conn.execute("delete from gis.boundary")
        conn.commit()
    try:
        done = _cli(city, "load", "bus_stops", str(DATA / "gtfs" / "donanbus" / "stops.txt"),
                    "--report", str(tmp_path / "r.json"))
    finally:
        with psycopg.connect(city) as conn:
            conn.execute("insert into gis.boundary select * from saved_boundary")
            conn.execute("drop table saved_boundary")
            conn.commit()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "263 rows: 160 accepted" in done.stdout
    with psycopg.connect(city) as conn:
        assert conn.execute("select departures_per_weekday from gis.bus_stops where stop_id = '0753_A'"
                            ).fetchone() == (27,)


def test_bus_coverage_counts_only_stops_with_useful_service(city):
    from cityos.gis.sources import bus_stops

    with psycopg.connect(city) as conn:
        useful = bus_stops(conn, 10)
        every = bus_stops(conn)
    assert (len(every), len(useful)) == (160, 38)  # CITYOS_BUS_MIN_DEPARTURES: 10 a weekday


def test_gtfs_stops_outside_the_boundary_are_refused_by_line(city, tmp_path):
    done = _cli(city, "load", "bus_stops", str(DATA / "gtfs" / "donanbus"), "--dry-run",
                "--report", str(tmp_path / "r.json"))
    assert done.returncode == 0
    assert "160 refused" not in done.stdout and "263 rows: 0 accepted" in done.stdout
    assert "outside 会津若松市" in json.loads((tmp_path / "r.json").read_text())["refused"][-1]["reason"]


def test_a_city_without_a_registry_gets_population_per_area_from_its_published_statistics(city, tmp_path):
    done = _cli(city, "load", "population", str(DATA / "population" / "akishima_2025_excerpt.csv"),
                "--report", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "7 rows: 7 accepted" in done.stdout
    assert _count(city, "registry.residents") == 0
    table = _cli(city, "population", "--as-of", "2025-06-01")  # a reference date (month start)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.strip().splitlines()
    assert lines[0].startswith("district_code,age_0_14,age_15_64,age_65_74,age_75_plus,total")
    assert lines[1].startswith("132071,13636,71767,13062,17402,115867")  # the 2025/6/1 row


def test_a_registry_extract_with_wareki_and_excel_serial_dates_loads(city, tmp_path):
    """The same date reader as the change file: 和暦 (R5.4.1, H27.10.30, 昭和), Excel serials (45017)."""
    path = tmp_path / "extract.csv"
    path.write_bytes(("住民ID,世帯番号,町丁目コード,住所ID,生年月日,性別,転入日\n"
                      "R1,H1,D1,A1,昭和50年1月1日,男,R5.4.1\nR2,H1,D1,A1,H27.10.30,女,45017\n"
                      "R3,H2,D2,A2,1990/3/4 0:00:00,女,\n").encode("cp932"))
    done = _cli(city, "load-registry", str(path))
    assert done.returncode == 0, done.stderr
    with psycopg.connect(city) as conn:
        rows = conn.execute("select person_id, birth_date::text, moved_in::text from registry.residents "
                            "order by person_id").fetchall()
        conn.execute("truncate registry.residents")
        conn.commit()
    assert rows == [("R1", "1975-01-01", "2023-04-01"), ("R2", "2015-10-30", "2023-04-01"),
                    ("R3", "1990-03-04", None)]


def test_a_registry_extract_with_an_unreadable_date_is_refused_by_line_without_a_traceback(city, tmp_path):
    path = tmp_path / "extract.csv"
    path.write_text("住民ID,世帯番号,町丁目コード,住所ID,生年月日,性別\nR1,H1,D1,A1,R5.4.1,男\n"
                    "R2,H1,D1,A1,R5.13.1,女\nR1,H1,D1,A1,H2.1.1,女\n")
    done = _cli(city, "load-registry", str(path))
    assert done.returncode == 2
    assert "line 3: birth_date 'R5.13.1' is not a date (no such day)" in done.stderr
    assert "line 4: duplicate person_id 'R1' (first on line 2)" in done.stderr
    assert "Traceback" not in done.stderr
