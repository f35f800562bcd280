"""Real public files from four municipalities (three layouts of 消防水利, one GTFS-JP feed) read
by the loaders, with their counts and a few exact values; and no file can make a loader raise.
Sources and licences: tests/data/SOURCES.md and gis/data/aizuwakamatsu/SOURCES.md."""

from __future__ import annotations

import contextlib
import csv
import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.ops import unary_union

from cityos.gis.democity import HYDRANTS_FILE
from cityos.gis.loaders.boundary import read_boundary
from cityos.gis.loaders.fire_water import read_fire_water
from cityos.gis.loaders.gtfs import read_gtfs
from cityos.gis.loaders.points import Boundary
from cityos.gis.loaders.run import load_file, loadable
from cityos.gis.loaders.tables import TableError, read_table

DATA = Path(__file__).resolve().parents[1] / "data"
FIRE = DATA / "fire_water"
GTFS = DATA / "gtfs" / "donanbus"


def _boundary(*codes: str) -> Boundary:
    gdf, report = read_boundary(DATA / "boundaries" / "n03_2021_s0010_selected.geojson")
    assert report.ok and len(gdf) == 6
    chosen = gdf[gdf["code"].isin(codes)]
    return Boundary("・".join(chosen["name"]), unary_union(list(chosen.geometry)), 100.0)


def test_aizuwakamatsu_2014_hydrantmap_file_loads_with_english_headers_and_longitude_first():
    gdf, report = read_fire_water(HYDRANTS_FILE, _boundary("07202"))
    assert (report.rows, report.loaded, report.refused) == (1974, 1974, [])
    assert gdf["kind"].value_counts().to_dict() == {"消火栓": 1733, "防火水槽": 241}
    first = gdf.iloc[0]
    assert (first["id"], first["attributes"]["title"]) == ("L00002", "19-16-5")
    assert first["attributes"]["date"] == "2012-01-25"
    assert (round(first.geometry.x, 9), round(first.geometry.y, 9)) == (139.9078325, 37.580345278)
    zero = [r for r in report.repaired if "zero date" in r["repair"]]
    assert [r["line"] for r in zero] == [1974]  # the last row, dated 1899/12/30 0:00:00: stored as unknown
    assert gdf.set_index("id").loc["L01974", "attributes"]["date"] == ""
    assert "種別 codes read as standard values: suisou -> 防火水槽, syoukasen -> 消火栓" in report.notes


def test_susono_hydrantmap_file_with_capitalised_headers_loads_inside_its_boundary():
    gdf, report = read_fire_water(FIRE / "susono_hydrantmap.csv", _boundary("22220"))
    assert (report.rows, report.loaded, len(report.refused)) == (985, 985, 0)
    assert gdf.iloc[0]["attributes"]["date"] == "2014-02-22"
    assert (gdf.iloc[0].geometry.x, gdf.iloc[0].geometry.y) == (138.90406, 35.14992)


def test_yokote_linkdata_csv_refuses_its_corrupt_rows_by_line_and_the_point_24_km_away():
    gdf, report = read_fire_water(FIRE / "yokote_linkdata.csv", _boundary("05203"))
    assert report.rows == 1560
    lines = {r["line"]: r["reason"] for r in report.refused}
    assert set(range(1020, 1032)) | set(range(1069, 1081)) <= set(lines)
    assert lines[1022] == "unreadable coordinates (latitude '2013.9.18字昼川84−1', longitude '39.346241')"
    assert lines[1552].startswith("position 39.3005247, 140.0 is 23,986 m outside 横手市")
    assert report.loaded == 1534 and len(gdf) == 1534
    assert gdf.iloc[0]["address"] == "横手市寿町11−32"  # full-width digits read as ASCII


def test_tsuruga_linkdata_tsv_uses_property_row_names_and_rdf_uris():
    gdf, report = read_fire_water(FIRE / "tsuruga_mikata_linkdata.txt", _boundary("18202", "18442", "18501"))
    assert (report.rows, report.loaded, report.refused) == (500, 500, [])
    assert "LinkData file: column names from the #property row" in report.notes
    assert gdf.iloc[0]["id"] == "1" and gdf.iloc[0]["address"] == "鞠山No1"
    assert round(gdf.iloc[0].geometry.y, 8) == 35.67997479


def test_rows_of_the_neighbouring_towns_are_refused_by_line_against_tsurugas_boundary():
    _, report = read_fire_water(FIRE / "tsuruga_mikata_linkdata.txt", _boundary("18202"))
    assert (report.loaded, len(report.refused)) == (300, 200)
    assert all("m outside 敦賀市" in r["reason"] for r in report.refused)
    assert report.refused[0]["line"] == 310


def test_a_seoul_position_on_an_aizuwakamatsu_row_is_refused(tmp_path):
    path = tmp_path / "fw.csv"
    path.write_text("ID,種別,緯度,経度\nH1,消火栓,37.4950,139.9300\nH2,消火栓,37.5665,126.9780\n")
    _, report = read_fire_water(path, _boundary("07202"))
    assert report.loaded == 1
    assert report.refused[0]["line"] == 3 and "outside 会津若松市" in report.refused[0]["reason"]


def test_duplicate_ids_are_refused_on_the_line_they_repeat(tmp_path):
    path = tmp_path / "fw.csv"
    path.write_text("ID,種別,緯度,経度\nH1,消火栓,37.4950,139.9300\nH1,防火水槽,37.4960,139.9310\n")
    gdf, report = read_fire_water(path)
    assert len(gdf) == 1
    assert report.refused == [{"line": 3, "reason": "duplicate ID 'H1' (first on line 2)"}]


def test_the_misspelt_address_header_loads_the_addresses(tmp_path):
    path = tmp_path / "fw.csv"
    path.write_text("ID,種別,所在地_連結標記,緯度,経度\nH1,消火栓,会津若松市栄町1-1,37.4950,139.9300\n")
    gdf, report = read_fire_water(path)
    assert gdf.iloc[0]["address"] == "会津若松市栄町1-1"
    assert "column '所在地_連結標記' read as '所在地_連結表記' (a known misspelling)" in report.notes


def test_gtfs_jp_feed_gives_platforms_with_weekday_departures_and_skips_parent_stations():
    gdf, report = read_gtfs(GTFS)
    assert (report.rows, report.loaded, len(report.refused)) == (263, 160, 103)
    assert all("location_type=1 (parent station)" in r["reason"] for r in report.refused)
    stops = gdf.set_index("stop_id")
    assert stops.loc["0753_A", "name"] == "八丁平5丁目"
    assert stops.loc["0753_A", "departures_per_weekday"] == 27
    assert int(gdf["departures_per_weekday"].sum()) == 1450
    assert "47 weekday trips of 94" in report.notes


def test_gtfs_jp_zip_with_every_field_quoted_stray_spaces_and_full_width_digits_reads_the_same(tmp_path):
    archive = tmp_path / "feed.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in GTFS.glob("*.txt"):
            text = path.read_text(encoding="utf-8")
            if path.name == "stops.txt":
                rows = list(csv.reader(io.StringIO(text)))
                out = io.StringIO()
                writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
                writer.writerow(rows[0])
                full_width = str.maketrans("0123456789.", "０１２３４５６７８９．")
                for i, row in enumerate(rows[1:]):
                    row[4] = f" {row[4]}" if i % 2 else row[4].translate(full_width)
                    writer.writerow(row)
                text = "\ufeff" + out.getvalue().replace('","', '", "')
            zf.writestr(f"feed/{path.name}", text.encode("utf-8"))
    gdf, report = read_gtfs(archive)
    plain, _ = read_gtfs(GTFS)
    assert report.encoding == "UTF-8 with BOM"
    assert report.loaded == 160
    assert gdf.geometry.geom_equals_exact(plain.geometry, 1e-9).all()
    assert gdf["departures_per_weekday"].tolist() == plain["departures_per_weekday"].tolist()


def test_gtfs_stops_txt_given_alone_reads_its_feed_folder():
    gdf, report = read_gtfs(GTFS / "stops.txt")
    assert report.loaded == 160 and gdf["departures_per_weekday"].max() == 27


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=600),
                      st.text(alphabet=st.sampled_from(list(',\t"#\n\r 0123456789.-緯度経度IDtype,lat,lng,R元H年\x00')),
                              max_size=300).map(lambda t: t.encode("utf-8")),
                      st.text(max_size=200).map(lambda t: ("ID,緯度,経度,種別,date\n" + t).encode("cp932", "replace"))))
def test_any_bytes_give_a_report_never_an_exception(tmp_path, data):
    with contextlib.suppress(TableError):
        read_table(data)
    path = tmp_path / "any.csv"
    path.write_bytes(data)
    for layer in ("fire_water", "bus_stops", "facilities", "boundary"):
        report = load_file(None, layer, path)
        assert report.fatal or report.loaded + len(report.refused) <= max(report.rows, 1) * 2


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400))
def test_any_zip_member_bytes_give_a_gtfs_report(tmp_path, data):
    archive = tmp_path / "feed.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("stops.txt", "trips.txt", "stop_times.txt"):
            zf.writestr(name, data)
    report = load_file(None, "bus_stops", archive)
    assert report.layer == "bus_stops"


@pytest.mark.parametrize("layer", sorted(loadable()))
def test_a_missing_file_is_a_report_not_a_traceback(tmp_path, layer):
    report = load_file(None, layer, tmp_path / "nothing.csv")
    assert report.fatal


POPULATION = DATA / "population" / "akishima_2025_excerpt.csv"


def test_akishima_area_age_population_rows_sum_their_bands_to_the_published_total():
    from cityos.gis.loaders.population_stats import analysis_bands, read_population

    frame, report = read_population(POPULATION)
    assert (report.rows, report.loaded, report.refused) == (7, 7, [])
    first = frame.iloc[0]
    assert (first["area_code"], str(first["as_of"]), first["total"], first["households"]) == (
        "132071", "2025-01-01", 115632, 58040)
    assert sum(first["age_bands"].values()) == 115632
    assert first["age_bands"]["100+"] == 70
    assert analysis_bands(first["age_bands"]) == {"age_0_14": 13699, "age_15_64": 71459, "age_65_74": 13210,
                                                  "age_75_plus": 17264}


def test_the_same_population_in_linkdata_form_reads_the_same(tmp_path):
    """LinkData form of the real rows: UTF-8 with BOM, nine # rows, names only in #property, M/D/YYYY."""
    from cityos.gis.loaders.population_stats import read_population

    lines = POPULATION.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    meta = ["#LINK", "#lang\tja", "#attribution_name\t昭島市", "#license\thttp://creativecommons.org/licenses/by/4.0/",
            "#file_name\takishima", "#download_from\thttp://linkdata.org/work/example",
            "#property\t" + "\t".join(header), "#object_type_xsd\t" + "\t".join(["string"] * len(header)),
            "#property_context\t" + "\t".join(["Assertion"] * len(header))]
    body = []
    for line in lines[1:]:
        cells = line.split(",")
        y, m, d = cells[4].split("/")
        cells[4] = f"{m}/{d}/{y}"
        body.append("\t" + "\t".join(cells))
    path = tmp_path / "linkdata.txt"
    path.write_bytes(("\ufeff" + "\r\n".join(meta + body) + "\r\n").encode("utf-8"))
    frame, report = read_population(path)
    plain, _ = read_population(POPULATION)
    assert report.encoding == "UTF-8 with BOM" and report.loaded == 7
    assert frame["as_of"].tolist() == plain["as_of"].tolist()
    assert frame["age_bands"].tolist() == plain["age_bands"].tolist()


def test_population_counts_that_are_not_numbers_are_refused_by_line(tmp_path):
    from cityos.gis.loaders.population_stats import read_population

    lines = POPULATION.read_text(encoding="utf-8").splitlines()
    bad = lines[2].replace(",115610,", ",11万5610,")
    path = tmp_path / "p.csv"
    path.write_text("\n".join([lines[0], lines[1], bad, lines[3].replace("2025/3/1", "R7.3.1")]) + "\n")
    frame, report = read_population(path)
    assert report.refused == [{"line": 3, "reason": "count '11万5610' is not a whole number"}]
    assert [str(d) for d in frame["as_of"]] == ["2025-01-01", "2025-03-01"]


def test_bus_stops_as_a_plain_csv_load_without_a_crs_error(tmp_path):
    path = tmp_path / "stops.csv"
    path.write_text('"stop_id","stop_name","stop_lat","stop_lon"\n"S1","市役所前","37.4947"," 139.9297"\n')
    report = load_file(None, "bus_stops", path)
    assert (report.fatal, report.loaded) == ("", 1)
