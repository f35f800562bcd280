"""The one tabular reader, the column synonyms and the one date reader, on the shapes real files take."""

from __future__ import annotations

from datetime import date

import pytest

from cityos.gis.loaders.columns import resolve
from cityos.gis.loaders.dates import DateError, parse_date
from cityos.gis.loaders.tables import TableError, read_table

HEADER = "全国地方公共団体コード,ID,種別,所在地_連結表記,緯度,経度\n"
ROW = "072028,H1,消火栓,会津若松市栄町１－１,３７.４９５０,１３９.９３００\n"


@pytest.mark.parametrize(("data", "encoding"), [
    ((HEADER + ROW).encode("utf-8"), "UTF-8"),
    (b"\xef\xbb\xbf" + (HEADER + ROW).encode("utf-8"), "UTF-8 with BOM"),
    ((HEADER + ROW).encode("cp932"), "CP932 (Shift_JIS)"),
])
def test_the_encoding_found_is_reported_and_the_text_is_the_same(data, encoding):
    table = read_table(data)
    assert table.encoding == encoding
    assert table.columns[0] == "全国地方公共団体コード"
    assert table.rows == [(2, ["072028", "H1", "消火栓", "会津若松市栄町1-1", "37.4950", "139.9300"])]


def test_bytes_that_are_neither_utf8_nor_cp932_are_refused_with_a_reason():
    with pytest.raises(TableError, match="neither UTF-8 nor Shift_JIS"):
        read_table(b"ID,lat\n\x81\x7f\xff\xfe\n")


def test_linkdata_rows_give_the_column_names_and_keep_line_numbers():
    data = ("#LINK\r\n#lang\tja\r\n#license\thttp://creativecommons.org/licenses/by/3.0/deed.ja\r\n"
            "#property\taddress\thttp://www.w3.org/2003/01/geo/wgs84_pos#lat\thttp://www.w3.org/2003/01/geo/wgs84_pos#long"
            "\r\n#object_type_xsd\tstring\tfloat\tfloat\r\n#property_context\tAssertion\tAssertion\tAssertion\r\n"
            "1\t鞠山№1\t35.67997479166667\t136.08389613888886\t2013.4.22\r\n").encode()
    table = read_table(data)
    assert table.columns[:4] == ["subject", "address", "http://www.w3.org/2003/01/geo/wgs84_pos#lat",
                                 "http://www.w3.org/2003/01/geo/wgs84_pos#long"]
    assert table.rows == [(7, ["1", "鞠山No1", "35.67997479166667", "136.08389613888886", "2013.4.22"])]
    assert table.metadata["license"].endswith("by/3.0/deed.ja")
    assert resolve(table.columns)["latitude"] == "http://www.w3.org/2003/01/geo/wgs84_pos#lat"


def test_quoted_fields_with_stray_spaces_and_tabs_are_read():
    table = read_table(b'"stop_id", "stop_lat", "stop_lon"\n"S1", "35.530774", " 139.681697"\n')
    assert table.columns == ["stop_id", "stop_lat", "stop_lon"]
    assert table.rows[0][1] == ["S1", "35.530774", "139.681697"]
    assert read_table(b"a\tb\n1\t2\n").rows == [(2, ["1", "2"])]


def test_synonyms_map_english_hydrantmap_and_misspelt_names_and_report_the_misspelling():
    notes: list[str] = []
    found = resolve(["ID", "longitude", "latitude", "title", "type", "所在地_連結標記", "date"], notes)
    assert found == {"id": "ID", "longitude": "longitude", "latitude": "latitude", "name": "title",
                     "kind": "type", "address": "所在地_連結標記", "date": "date"}
    assert notes == ["column '所在地_連結標記' read as '所在地_連結表記' (a known misspelling)"]
    assert resolve(["緯度（世界測地系）", "経 度"]) == {"latitude": "緯度（世界測地系）", "longitude": "経 度"}


@pytest.mark.parametrize(("text", "expected"), [
    ("R5.4.1", date(2023, 4, 1)), ("H27.10.30", date(2015, 10, 30)), ("昭和50年1月1日", date(1975, 1, 1)),
    ("S50/1/1", date(1975, 1, 1)), ("令和元年5月1日", date(2019, 5, 1)), ("45017", date(2023, 4, 1)),
    ("2012/01/25 0:00:00", date(2012, 1, 25)), ("2014/2/22 0:00", date(2014, 2, 22)), ("3/4/2023", date(2023, 3, 4)),
    ("2013.9.18", date(2013, 9, 18)), ("20240401", date(2024, 4, 1)), ("２０２６－１１－２４", date(2026, 11, 24)),
    ("1899/12/30 0:00:00", None), ("0", None), ("", None),
])
def test_one_date_reader_reads_every_form_real_files_use(text, expected):
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", ["1999-99-99", "R1.4.1", "2013.9.1848", "昨日", "H27.13.1"])
def test_dates_that_are_not_dates_are_refused_with_the_reason(text):
    with pytest.raises(DateError):
        parse_date(text)
