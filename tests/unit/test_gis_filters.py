"""CQL2 filters become parameterised SQL over a collection's queryables, and nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityos.gis.filters import FilterError, parse_filter, to_condition

QUERYABLES = {"kind", "diameter", "note", "occurred_at", "name"}


def condition(text: str, lang: str = "cql2-text"):
    return to_condition(parse_filter(text, lang), QUERYABLES)


def test_and_binds_tighter_than_or():
    sql = condition("kind = 'a' OR kind = 'b' AND diameter > 100").sql
    assert sql == "((kind = %(cql0)s) or ((kind = %(cql1)s) and (diameter > %(cql2)s)))"


def test_literal_values_are_parameters_not_sql():
    result = condition("name = 'x''); drop table gis.fire_water; --'")
    assert "drop" not in result.sql
    assert result.params == {"cql0": "x'); drop table gis.fire_water; --"}


def test_text_and_json_filters_give_the_same_condition():
    text = condition("kind IN ('消火栓', '防火水槽') AND NOT note IS NULL")
    json_form = condition('{"op": "and", "args": [{"op": "in", "args": [{"property": "kind"}, ["消火栓", "防火水槽"]]},'
                          ' {"op": "not", "args": [{"op": "isNull", "args": [{"property": "note"}]}]}]}', "cql2-json")
    assert text == json_form


def test_spatial_literals_are_given_the_layers_srid():
    result = condition("S_INTERSECTS(geom, POLYGON((139.9 37.4, 140 37.4, 140 37.5, 139.9 37.4)))")
    assert result.sql == "st_intersects(geom, st_setsrid(st_geomfromgeojson(%(cql0)s), 4326))"
    assert '"Polygon"' in result.params["cql0"]


def test_a_bbox_becomes_an_envelope_in_wgs84():
    result = condition("S_WITHIN(geom, BBOX(139.9, 37.4, 140.0, 37.5))")
    assert result.sql.startswith("st_within(geom, st_makeenvelope(")
    assert list(result.params.values()) == [139.9, 37.4, 140.0, 37.5]


def test_a_timestamp_is_compared_as_an_aware_instant():
    result = condition("occurred_at >= TIMESTAMP('2026-01-01T00:00:00Z')")
    assert result.params["cql0"].utcoffset().total_seconds() == 0


@pytest.mark.parametrize("text", [
    "secret_column = 1",  # not a queryable
    "pg_sleep(10) = 1",  # functions are not passed through
    "diameter + 1 = 2",  # no arithmetic
    "T_AFTER(occurred_at, TIMESTAMP('2026-01-01T00:00:00Z'))",  # temporal functions are not offered
    "geom = 'x'",  # geometries only in spatial functions
    "S_INTERSECTS(kind, POINT(1 2))",
    "kind = ",  # not CQL2
])
def test_what_is_not_offered_is_refused_with_a_reason(text):
    with pytest.raises(FilterError):
        condition(text)


def test_an_unknown_filter_language_is_refused():
    with pytest.raises(FilterError, match="filter-lang"):
        parse_filter("kind = 'a'", "ecql")


@given(st.text(max_size=200))
def test_any_text_is_a_condition_over_queryables_or_a_filter_error(text):
    try:
        result = condition(text)
    except FilterError:
        return
    words = {w for w in result.sql.replace("(", " ").replace(")", " ").replace(",", " ").split()}
    allowed = QUERYABLES | {"geom", "and", "or", "not", "is", "null", "in", "like", "between", "lower", "true",
                            "false", "=", "<>", "<", "<=", ">", ">=", "4326"}
    leftovers = {w for w in words if not w.startswith("%(cql") and not w.startswith("st_")}
    assert leftovers <= allowed
