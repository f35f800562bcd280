"""The Solr-query subset of the CKAN search plugin, translated to SQL (no CKAN needed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

_PATH = Path(__file__).resolve().parents[2] / "opendata/ckanext-cityos/ckanext/cityos_pgsearch/lucene.py"
_spec = importlib.util.spec_from_file_location("cityos_pgsearch_lucene", _PATH)
lucene = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = lucene  # dataclasses look their module up while the class is built
_spec.loader.exec_module(lucene)


def test_match_all_is_true():
    assert lucene.to_sql("*:*") == ("TRUE", {})


def test_a_field_value_becomes_a_parameterised_exists():
    where, params = lucene.to_sql('+site_id:"default"')
    assert where == "EXISTS (SELECT 1 FROM cityos_search_values(doc, %(p0)s) v WHERE v = %(p1)s)"
    assert params == {"p0": "site_id", "p1": "default"}


def test_juxtaposed_clauses_are_all_required():
    where, _ = lucene.to_sql("+state:active +capacity:public")
    assert where.startswith("(EXISTS") and " AND EXISTS" in where


def test_or_inside_a_field_group_applies_the_field_to_each_value():
    where, params = lucene.to_sql('permission_labels:("public" OR "member-1")')
    assert " OR " in where and list(params.values()) == ["permission_labels", "public", "permission_labels",
                                                         "member-1"]


def test_a_prohibited_clause_is_negated():
    where, _ = lucene.to_sql("-tags:internal")
    assert where.startswith("(NOT EXISTS")


def test_free_text_searches_the_body_case_insensitively():
    where, params = lucene.to_sql("Hydrant 100%")
    assert where == "(body ILIKE %(p0)s AND body ILIKE %(p1)s)"
    assert params == {"p0": "%hydrant%", "p1": "%100\\%%"}


def test_wildcards_become_like_patterns():
    _, params = lucene.to_sql("name:snow*")
    assert params["p1"] == "snow%"


def test_numeric_ranges_compare_as_numbers():
    where, params = lucene.to_sql("num_resources:[1 TO *]")
    assert "::numeric END) >= %(p1)s" in where and params["p1"] == 1.0


def test_unbalanced_parentheses_are_a_query_error():
    with pytest.raises(lucene.QueryError):
        lucene.to_sql("tags:(a OR b")


def test_sort_accepts_fields_and_directions_and_refuses_injection():
    assert lucene.sort_sql("name asc, score desc").startswith("lower(doc->>'name') asc")
    with pytest.raises(lucene.QueryError):
        lucene.sort_sql("name; drop table x asc")
    with pytest.raises(lucene.QueryError):
        lucene.sort_sql("name sideways")


@given(st.text(max_size=60))
def test_any_text_either_translates_or_is_a_query_error(text):
    try:
        where, params = lucene.to_sql(text)
    except lucene.QueryError:
        return
    assert where.count("%(") == len(params) or "%(" in where
    for value in params.values():
        assert value is not None
    assert ";" not in where.replace("%(", "")


@pytest.mark.parametrize("query", ["((((a", "(a OR b", "a)", "title:"])
def test_a_malformed_query_is_a_query_error_not_a_crash(query):
    with pytest.raises(lucene.QueryError):
        lucene.to_sql(query)


@pytest.mark.parametrize("query", ["(" * 2000 + "a" + ")" * 2000, "NOT " * 1100 + "a", "-" * 5000 + "a"])
def test_deep_nesting_is_refused_before_the_parser_recurses_too_deep(query):
    with pytest.raises(lucene.QueryError, match="nests deeper"):
        lucene.to_sql(query)


def test_nesting_within_the_bound_still_parses():
    depth = lucene.MAX_DEPTH
    assert lucene.to_sql("(" * depth + "title:a" + ")" * depth)[0].startswith("EXISTS")
