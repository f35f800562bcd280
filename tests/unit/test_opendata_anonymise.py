"""The anonymisation rules and the gate: properties over generated contributions (hypothesis)."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityos.opendata.anonymise import aggregate, apply_rules, check
from cityos.opendata.definitions import Anonymisation

K = 10
CONSENT = Anonymisation(basis="consent", consent={"category": "energy"}, group_size_column="homes",
                        value_columns=("kwh",))
COUNTS = Anonymisation(basis="statutory", count_columns=("male", "female"))

subjects = st.sampled_from([f"p{i:02d}" for i in range(40)])
contribution = st.tuples(subjects, st.sampled_from(["d1", "d2", "d3"]), st.sampled_from(["2026-01", "2026-02"]),
                         st.floats(min_value=0, max_value=50, allow_nan=False))
contributions = st.lists(contribution, max_size=300).map(
    lambda rows: pd.DataFrame(rows, columns=["subject_id", "district", "month", "kwh"]))
consent_sets = st.sets(subjects, max_size=40)


def _aggregate(frame: pd.DataFrame, consented) -> pd.DataFrame:
    return aggregate(frame, ["district", "month"], "subject_id", {"kwh": ("kwh", "mean")}, K, consented,
                     size_column="homes").frame


@settings(max_examples=150, deadline=None)
@given(contributions, consent_sets)
def test_no_aggregated_group_is_published_below_k(frame, consented):
    out = _aggregate(frame, consented)
    sizes = out["homes"].dropna()
    assert (sizes >= K).all()
    assert out.loc[out["homes"].isna(), "kwh"].isna().all()


@settings(max_examples=150, deadline=None)
@given(contributions, consent_sets)
def test_people_without_consent_contribute_nothing(frame, consented):
    with_everyone = _aggregate(frame, consented)
    only_consenting = _aggregate(frame[frame["subject_id"].isin(consented)], None)
    pd.testing.assert_frame_equal(with_everyone.reset_index(drop=True), only_consenting.reset_index(drop=True))


@settings(max_examples=150, deadline=None)
@given(contributions, consent_sets)
def test_aggregate_reports_only_consenting_contributors(frame, consented):
    table = aggregate(frame, ["district"], "subject_id", {"kwh": ("kwh", "sum")}, K, consented, size_column="homes")
    assert table.contributors <= consented
    assert check(apply_rules(table.frame, CONSENT, K), CONSENT, K, table.contributors, consented) == []


count_rows = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=1, max_size=50)


@settings(max_examples=150, deadline=None)
@given(count_rows)
def test_counts_after_the_rules_never_hold_a_cell_between_one_and_k(rows):
    frame = pd.DataFrame(rows, columns=["male", "female"])
    out = apply_rules(frame, COUNTS, K)
    values = out[["male", "female"]].astype("Float64")
    assert not ((values > 0) & (values < K)).any().any()
    assert check(out, COUNTS, K) == []


def test_gate_finds_a_small_count():
    frame = pd.DataFrame({"male": [12, 3], "female": [15, 20]})
    assert check(frame, COUNTS, K) == ["1 cell(s) of 'male' between 1 and 9"]


def test_gate_finds_a_value_published_for_a_small_group():
    frame = pd.DataFrame({"homes": pd.array([None, 12], dtype="Int64"), "kwh": [4.2, 5.0]})
    assert check(frame, CONSENT, K, [], []) == ["1 value(s) of 'kwh' published for a group below k"]


def test_gate_finds_contributors_without_consent():
    frame = pd.DataFrame({"homes": [12], "kwh": [5.0]})
    problems = check(frame, CONSENT, K, contributors={"a", "b"}, consented={"a"})
    assert problems == ["1 contributor(s) without an active energy/open_data consent"]


def test_gate_finds_identifying_columns():
    frame = pd.DataFrame({"person_id": ["x"], "male": [0], "female": [0]})
    assert check(frame, COUNTS, K) == ["identifying columns present: person_id"]


def test_device_ids_are_identifying_in_personal_datasets_only():
    frame = pd.DataFrame({"device_id": ["home-1"], "homes": [12], "kwh": [1.0]})
    assert "device_id" in check(frame, CONSENT, K, [], [])[0]
    assert check(frame, Anonymisation(basis="non_personal"), K) == []


def test_rules_drop_identifying_columns():
    frame = pd.DataFrame({"person_id": ["x"], "household_id": ["h"], "male": [12], "female": [0]})
    assert list(apply_rules(frame, COUNTS, K).columns) == ["male", "female"]


def test_rules_round_coordinates_and_the_gate_checks_them():
    rules = Anonymisation(basis="non_personal", coordinate_decimals=4)
    frame = pd.DataFrame({"lat": [37.4945678], "lon": [139.9298765]})
    assert check(frame, rules, K) == ["lat finer than 4 decimals", "lon finer than 4 decimals"]
    out = apply_rules(frame, rules, K)
    assert out.iloc[0].tolist() == [37.4946, 139.9299]
    assert check(out, rules, K) == []


def test_rules_truncate_times_to_the_bucket_and_the_gate_checks_them():
    rules = Anonymisation(basis="non_personal", time_bucket="1min")
    frame = pd.DataFrame({"time": pd.to_datetime(["2026-01-10T08:15:42Z"])})
    assert check(frame, rules, K) == ["time finer than 1min"]
    out = apply_rules(frame, rules, K)
    assert out["time"].iloc[0] == pd.Timestamp("2026-01-10T08:15:00Z")


def test_rules_blank_the_values_of_small_groups():
    frame = pd.DataFrame({"homes": [3, 12], "kwh": [7.0, 5.0]})
    out = apply_rules(frame, CONSENT, K)
    assert out["homes"].isna().tolist() == [True, False]
    assert out["kwh"].isna().tolist() == [True, False]


def test_consent_basis_needs_a_consent_rule():
    with pytest.raises(ValueError, match=r"needs a \[anonymisation\.consent\]"):
        Anonymisation(basis="consent", group_size_column="homes")


def test_personal_bases_need_something_to_check_k_on():
    with pytest.raises(ValueError, match="count_columns or group_size_column"):
        Anonymisation(basis="statutory")
