"""The NGSI-LD query language: what parses, what is refused, and that no caller text reaches the SQL."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityos.ingest.ngsild.problems import NgsiError
from cityos.ingest.ngsild.query import Logical, Params, Term, geometry_json, parse_q, q_sql
from cityos.ingest.ngsild.terms import CORE, from_document, from_link_header

SQL_SHAPE = re.compile(r"^[a-z0-9_ .,()=<>!'*~:%\[\]-]+$")


def test_comparisons_ranges_lists_and_logic_parse_into_a_tree():
    tree = parse_q('speed>10;(category=="snowplow"|category=="bus");temperature==-5..5;heading==0,90,180')
    assert isinstance(tree, Logical) and tree.op == ";"
    assert tree.parts[0] == Term("speed", None, ">", 10.0)
    assert tree.parts[2] == Term("temperature", None, "==", (-5.0, 5.0), "range")
    assert tree.parts[3] == Term("heading", None, "==", (0.0, 90.0, 180.0), "list")


def test_observed_at_and_attribute_existence_parse():
    tree = parse_q("power_w.observedAt>=2026-12-01T00:00:00Z;location")
    assert tree.parts[0].sub == "observedAt" and tree.parts[0].value.year == 2026
    assert tree.parts[1] == Term("location", None)


@pytest.mark.parametrize("text", ["speed>>1", "(speed>1", "speed>1)", "speed>", ">1", "a.b.c==1", "speed>1..2",
                                  "t==2026-12-01T00:00:00", '"x"==1', "speed~=1", "(" * 40 + "a" + ")" * 40])
def test_malformed_queries_are_bad_request_data(text):
    with pytest.raises(NgsiError) as err:
        parse_q(text)
    assert err.value.kind == "BadRequestData"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('abz_019.:;|()"=!<>~,-TZ \\')), max_size=80))
def test_any_text_either_parses_or_is_refused_and_never_reaches_the_sql(text):
    try:
        tree = parse_q(text)
    except NgsiError:
        return
    params = Params()
    sql = q_sql(tree, params)
    assert SQL_SHAPE.match(sql), sql  # only the translator's own words, columns and %(pN)s placeholders
    for value in params.values.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in sql


@pytest.mark.parametrize(("geometry", "coordinates"), [
    ("Polygon", [[[0, 0], [1, 1]]]), ("Polygon", [[[0, 0], [1, 0], [1, 1], [0, 1]]]), ("Point", [200, 0]),
    ("Point", [[1, 2]]), ("Circle", [1, 2]), ("LineString", [[1, 2]]), ("Point", "not json"),
])
def test_malformed_geometries_are_refused(geometry, coordinates):
    with pytest.raises(NgsiError):
        geometry_json(geometry, coordinates)


def test_the_core_context_of_any_version_is_known_and_a_remote_one_is_not_fetched():
    link = '<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld>; rel="http://www.w3.org/ns/json-ld#context"'
    assert from_link_header(link) == CORE
    with pytest.raises(NgsiError) as err:
        from_document("https://example.org/ctx.jsonld")
    assert err.value.status == 503


def test_an_inline_context_maps_short_names_but_cannot_redefine_core_terms():
    ctx = from_document([{"sdm": "https://smartdatamodels.org/", "temp": "sdm:temperature",
                          "observedAt": "https://evil.example/x"}])
    assert ctx.expand("temp") == "https://smartdatamodels.org/temperature"
    assert "observedAt" not in ctx.terms
    assert CORE.compact(CORE.expand("speed")) == "speed"
