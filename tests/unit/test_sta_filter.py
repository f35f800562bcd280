"""The SensorThings ``$filter`` translator: any text is either SQL with placeholders only, or a QueryError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityos.sta.entities import ENTITY_SETS, Context
from cityos.sta.filter import HOLE, MAX_NODES, Params, QueryError, translate
from cityos.sta.options import parse_options

OBSERVATIONS, LOCATIONS = ENTITY_SETS["Observations"], ENTITY_SETS["Locations"]
MARK = "zq';drop table core.devices;--"


def _sql(text: str, entity=OBSERVATIONS) -> tuple[str, dict]:
    ctx = Context(staff=False)
    return translate(text, lambda path: entity.resolve(path, "a", ctx), ctx.params), ctx.params.values


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


strings = st.text(min_size=0, max_size=30).map(lambda s: MARK + s)
numbers = st.one_of(st.integers(-10**12, 10**12).map(str), st.floats(allow_nan=False, allow_infinity=False,
                                                                      width=32).map(lambda f: f"{f:.3f}"))
comparisons = st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge"])
conditions = st.one_of(
    st.builds(lambda op, n: f"result {op} {n}", comparisons, numbers),
    st.builds(lambda s: f"Datastream/id eq {_quoted(s)}", strings),
    st.builds(lambda s: f"startswith(id, {_quoted(s)})", strings),
    st.builds(lambda s: f"substringof({_quoted(s)}, id)", strings),
    st.builds(lambda op, n: f"year(phenomenonTime) {op} {n}", comparisons, numbers),
    st.just("phenomenonTime ge 2026-01-01T00:00:00Z"),
)
filters = st.recursive(conditions, lambda inner: st.one_of(
    st.builds(lambda a, b: f"({a}) and ({b})", inner, inner),
    st.builds(lambda a, b: f"{a} or {b}", inner, inner),
    st.builds(lambda a: f"not ({a})", inner)), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(filters)
def test_values_are_always_placeholders_never_spliced(text):
    try:
        sql, _params = _sql(text)
    except QueryError:
        return
    assert MARK not in sql and "drop table" not in sql and HOLE not in sql
    assert "%(" in sql or "phenomenonTime" not in text


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_condition_or_a_query_error(text):
    try:
        sql, _ = _sql(text)
    except QueryError:
        return
    assert ";" not in sql and "--" not in sql and "/*" not in sql


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["(", ")", "not ", "-", "result", " add ", " eq ", "1", "'x'", " and ", "/",
                                 "geo.distance(", ",", "geography'POINT(1 2)'", "st_within(", "location"]),
                max_size=80).map("".join))
def test_token_soup_is_a_condition_or_a_query_error(text):
    for entity in (OBSERVATIONS, LOCATIONS):
        with contextlib.suppress(QueryError):
            _sql(text, entity)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["$filter", "$expand", "$select", "$orderby", "$top", "$skip", "$count",
                                        "$bogus"]), st.text(max_size=60), max_size=5))
def test_any_query_options_are_read_or_refused(raw):
    with contextlib.suppress(QueryError):
        parse_options(ENTITY_SETS["Things"], raw)


def test_deep_nesting_and_long_chains_are_refused_before_parsing():
    with pytest.raises(QueryError, match="nests deeper"):
        _sql("(" * 40 + "result eq 1" + ")" * 40)
    with pytest.raises(QueryError, match="terms"):
        _sql(" or ".join(["result eq 1"] * (MAX_NODES // 2)))
    with pytest.raises(QueryError, match="longer"):
        _sql("result eq 1 or " * 2000 + "result eq 1")


def test_geography_literals_are_checked_before_the_database_sees_them():
    with pytest.raises(QueryError, match="geography"):
        _sql("st_within(location, geography'POLYGON((0 0, 1 1')", LOCATIONS)
    sql, params = _sql("st_within(location, geography'POLYGON((0 0, 1 0, 1 1, 0 0))')", LOCATIONS)
    assert "st_geomfromtext(%(p0)s::text, 4326)" in sql and params["p0"].startswith("POLYGON")


def test_mixed_types_are_refused_not_sent_to_the_database():
    for text in ("id gt 5", "result eq 'x'", "phenomenonTime lt 3", "not result", "result add id eq 1"):
        with pytest.raises(QueryError):
            _sql(text)


def test_expand_nests_its_own_options_and_is_bounded():
    options = parse_options(ENTITY_SETS["Things"], {
        "$expand": "Datastreams($filter=ObservedProperty/id eq 'speed_kmh';$expand=Observations($top=3))"})
    (datastreams,) = options.expand
    assert datastreams.options.filter is not None and datastreams.options.expand[0].options.top == 3
    with pytest.raises(QueryError, match="deeper"):
        parse_options(ENTITY_SETS["Things"], {"$expand": "Datastreams/Thing/Datastreams/Thing/Datastreams"})


def test_unsupported_options_name_themselves():
    with pytest.raises(QueryError, match=r"\$resultFormat"):
        parse_options(ENTITY_SETS["Observations"], {"$resultFormat": "dataArray"})
    assert Params().add(1, "int8") == "%(p0)s::int8"


def test_in_is_a_list_of_placeholders_of_the_left_sides_type():
    sql, params = _sql("result in (1, 2.5) and phenomenonTime in (2026-01-01T00:00:00Z, 2026-01-02)")
    assert "in (%(p0)s::float8, %(p1)s::float8)" in sql and "in (%(p2)s::timestamptz, (%(p3)s::date)" in sql
    assert params["p0"] == 1.0 and params["p1"] == 2.5
    for text in ("result in (1, 'x')", f"result in ({', '.join(['1'] * 401)})", "result in (result)"):
        with pytest.raises(QueryError):
            _sql(text)


def test_a_path_across_a_to_many_relation_is_an_exists_over_the_related_entities():
    things = ENTITY_SETS["Things"]
    sql, params = _sql("Datastreams/ObservedProperty/name eq 'x' or startswith(Datastreams/name, 'y')", things)
    assert sql.count("exists (select 1 from") == 2 and HOLE not in sql and {"x", "y"} <= set(params.values())
    nested, _ = _sql("Datastreams/Observations/result gt 1", things)
    assert nested.count("exists (select 1 from") == 2 and HOLE not in nested
    with pytest.raises(QueryError, match="one to-many path"):
        _sql("Datastreams/name eq Locations/name", things)


def test_count_inside_expand_is_read():
    options = parse_options(ENTITY_SETS["Things"], {"$expand": "Datastreams($count=true;$top=1)"})
    assert options.expand[0].options.count is True


def test_the_id_may_be_selected_and_ordered_by_its_json_name():
    options = parse_options(ENTITY_SETS["Things"], {"$select": "@iot.id,name", "$orderby": "@iot.id desc"})
    assert options.select == ["id", "name"] and options.orderby == [("id", "desc")]


def test_a_count_option_with_a_control_character_is_refused_not_a_crash():
    """Found by hypothesis: '0\\x1f' passed the check after str.strip() and then failed int()."""
    with pytest.raises(QueryError):
        parse_options(ENTITY_SETS["Things"], {"$top": "0\x1f"})
