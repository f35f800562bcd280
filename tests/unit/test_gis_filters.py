"""CQL2 filters become parameterised SQL over a collection's queryables, and nothing else."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityos.gis.filters import MAX_FILTER_DEPTH, FilterError, parse_filter, to_condition

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


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_names = st.sampled_from([*sorted(QUERYABLES), "secret_column", "geom", "pg_sleep", "current_user"])
_literals = st.one_of(st.integers(-10**6, 10**6).map(str), st.text(max_size=20).map(_quoted),
                      st.sampled_from(["true", "false", "TIMESTAMP('2026-01-01T00:00:00Z')", "POINT(1 2)"]))
_comparisons = st.one_of(
    st.builds("{} {} {}".format, _names, st.sampled_from(["=", "<>", "<", ">=", "LIKE"]), _literals),
    st.builds("{} IN ({}, {})".format, _names, _literals, _literals),
    st.builds("{} IS NULL".format, _names),
    st.builds("{}({}) = 1".format, _names, _names),  # functions: never passed through
    st.builds("S_INTERSECTS({}, BBOX(0, 0, 1, 1))".format, _names),
)
_filters = st.recursive(_comparisons, lambda inner: st.one_of(
    st.builds("({}) AND ({})".format, inner, inner), st.builds("({}) OR ({})".format, inner, inner),
    st.builds("NOT ({})".format, inner)), max_leaves=6)
_SQL_WORDS = QUERYABLES | {"geom", "and", "or", "not", "is", "null", "in", "like", "lower", "true", "false",
                           "=", "<>", "<", "<=", ">", ">=", "4326", "st_intersects", "st_makeenvelope"}


@given(_filters)
def test_a_filter_becomes_sql_over_queryables_and_parameters_only_or_is_refused(text):
    try:
        result = condition(text)
    except FilterError:
        return
    placeholders = re.findall(r"%\((cql\d+)\)s", result.sql)
    assert sorted(placeholders) == sorted(result.params)
    words = re.sub(r"%\(cql\d+\)s|[(),]", " ", result.sql).split()
    assert set(words) <= _SQL_WORDS


#: The reviewer's crash inputs: each segfaulted the ``cql2`` parser (and with it the API process).
CRASHES = [
    ("NOT (" * 1100 + "kind = 'x'" + ")" * 1100, "cql2-text"),
    ("(" * 2000 + "kind = 'x'" + ")" * 2000, "cql2-text"),
    ("NOT " * 4000 + "kind = 'x'", "cql2-text"),
    ("diameter = " + "-" * 6000 + "5", "cql2-text"),
    ('{"op": "not", "args": [' * 600 + '{"op": "=", "args": [{"property": "kind"}, "x"]}' + "]}" * 600,
     "cql2-json"),
]


@pytest.mark.parametrize(("text", "lang"), CRASHES)
def test_a_deeply_nested_filter_is_refused_before_the_parser_sees_it(text, lang):
    with pytest.raises(FilterError, match="nests"):
        parse_filter(text, lang)


def test_parentheses_inside_string_literals_do_not_count_as_nesting():
    assert condition("kind = '" + "(" * 100 + "'").params == {"cql0": "(" * 100}


def test_negative_coordinates_of_a_geometry_are_numbers_not_nesting():
    ring = ", ".join(f"-{70 + i % 3} -{40 + i % 2}" for i in range(200)) + ", -70 -40"
    assert condition(f"S_INTERSECTS(geom, POLYGON((-70 -40, {ring})))").sql.startswith("st_intersects")


_wrappers = st.lists(st.sampled_from(["NOT (", "(", "NOT ", "NOT NOT ("]), min_size=1, max_size=60)


@given(_wrappers)
def test_nesting_is_never_undercounted(wrappers):
    text = "kind = 'x'"
    for wrapper in wrappers:
        text = wrapper + text + ")" * wrapper.count("(")
    real = sum(wrapper.count("(") + wrapper.count("NOT") for wrapper in wrappers)
    if real > MAX_FILTER_DEPTH:
        with pytest.raises(FilterError, match="nests"):
            parse_filter(text)
    else:
        assert condition(text).sql.count("not") == sum(wrapper.count("NOT") for wrapper in wrappers)
