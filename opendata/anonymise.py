"""The anonymisation rules and the gate that checks them before anything leaves the platform.

Pure functions over pandas frames, so that they are tested without servers (with hypothesis):

- ``aggregate`` turns per-person contributions into per-group rows, keeping only residents with an
  active consent, counting contributors, and blanking the values of groups smaller than k;
- ``apply_rules`` drops identifying columns, blanks small counts and generalises coordinates and times;
- ``check`` is the gate: it lists every violation in a finished table (a cell below k, a value of a
  small group, an identifying column, a contribution without consent, coordinates or times finer than
  the rules allow). A publish run with any violation uploads nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cityos.gis.analyses.suppression import suppress_counts
from cityos.opendata.definitions import Anonymisation

#: Columns that identify a person or a home; never published, whatever a definition says.
IDENTIFYING_COLUMNS = frozenset({
    "person_id", "household_id", "subject_id", "owner_subject", "birth_date", "address_id", "contact",
    "email", "phone", "name_kanji", "name_kana", "mqtt_password_hash",
})
#: Columns that identify a device: allowed only in datasets about nobody's personal data.
DEVICE_COLUMNS = frozenset({"device_id"})
LAT, LON = "lat", "lon"
BUCKETS = {"1min": "1min", "5min": "5min", "15min": "15min", "1h": "1h", "1d": "1D"}


class GateError(RuntimeError):
    """A dataset breaks its anonymisation rules; nothing was uploaded."""

    def __init__(self, violations: Mapping[str, list[str]]):
        self.violations = dict(violations)
        lines = [f"{name}: {v}" for name, items in self.violations.items() for v in items]
        super().__init__("anonymisation gate refused the run:\n  " + "\n  ".join(lines))


@dataclass(frozen=True)
class Table:
    """A dataset's rows and the residents (subject ids) whose data went into them."""

    frame: pd.DataFrame
    contributors: frozenset[str] = field(default_factory=frozenset)


def aggregate(contributions: pd.DataFrame, by: list[str], subject: str, values: Mapping[str, tuple[str, str]],
              k: int, consented: Iterable[str] | None = None, size_column: str = "contributors") -> Table:
    """Per group of ``by``: the number of distinct ``subject``s and ``values`` (name -> (column, how)).

    Rows of subjects not in ``consented`` (when given) are left out before anything is computed, so
    a withdrawn resident contributes to nothing. Groups with fewer than ``k`` contributors keep
    their keys but have their size and values blanked.
    """
    rows = contributions
    if consented is not None:
        rows = rows[rows[subject].isin(set(consented))]
    named = {name: pd.NamedAgg(column=column, aggfunc=how) for name, (column, how) in values.items()}
    grouped = rows.groupby(by, dropna=False, sort=True)
    out = grouped.agg(**{size_column: pd.NamedAgg(column=subject, aggfunc="nunique")}, **named).reset_index()
    small = out[size_column] < k
    out[size_column] = out[size_column].astype("Int64")
    out.loc[small, size_column] = pd.NA
    for name in values:
        out[name] = out[name].astype("Float64")
        out.loc[small, name] = pd.NA
    return Table(out, frozenset(rows[subject].dropna().astype(str)))


def _floor_times(frame: pd.DataFrame, bucket: str) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].dt.floor(BUCKETS[bucket])
    return out


def apply_rules(frame: pd.DataFrame, rules: Anonymisation, k: int) -> pd.DataFrame:
    """``frame`` made publishable: identifiers dropped, small counts blanked, coordinates and times generalised."""
    out = frame.drop(columns=[c for c in frame.columns if c in IDENTIFYING_COLUMNS or c in rules.drop_columns])
    if rules.basis != "non_personal":
        out = out.drop(columns=[c for c in out.columns if c in DEVICE_COLUMNS])
    if rules.group_size_column:
        size = out[rules.group_size_column].astype("Float64")
        small = (size > 0) & (size < k)
        out[rules.group_size_column] = out[rules.group_size_column].astype("Int64")
        out.loc[small.fillna(False), [rules.group_size_column, *rules.value_columns]] = pd.NA
    if rules.count_columns:
        out = suppress_counts(out, list(rules.count_columns), k)
    if rules.coordinate_decimals is not None:
        for column in (LAT, LON):
            if column in out:
                out[column] = out[column].astype(float).round(rules.coordinate_decimals)
    if rules.time_bucket:
        out = _floor_times(out, rules.time_bucket)
    return out


def _small(values: pd.Series, k: int) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce").astype("Float64")
    return ((numbers > 0) & (numbers < k)).fillna(False).astype(bool)


def _too_precise(values: pd.Series, decimals: int) -> bool:
    numbers = pd.to_numeric(values, errors="coerce").dropna().astype(float).to_numpy()
    return bool(len(numbers)) and not np.allclose(numbers, np.round(numbers, decimals), rtol=0, atol=1e-9)


@dataclass(frozen=True, slots=True)
class Release:
    """What one rule of the gate looks at: the table to publish, its rules and who contributed."""

    frame: pd.DataFrame
    rules: Anonymisation
    k: int
    contributors: Iterable[str] = ()
    consented: Iterable[str] | None = None


def no_identifying_columns(r: Release) -> list[str]:
    """No column that names a person (nor, for personal data, a device)."""
    forbidden = set(IDENTIFYING_COLUMNS) | (set(DEVICE_COLUMNS) if r.rules.basis != "non_personal" else set())
    found = sorted(forbidden & set(r.frame.columns))
    return [f"identifying columns present: {', '.join(found)}"] if found else []


def counts_zero_or_at_least_k(r: Release) -> list[str]:
    """Every count column is present and holds no count between 1 and k-1."""
    problems = []
    for column in r.rules.count_columns:
        if column not in r.frame:
            problems.append(f"count column {column!r} missing")
        elif (n := int(_small(r.frame[column], r.k).sum())):
            problems.append(f"{n} cell(s) of {column!r} between 1 and {r.k - 1}")
    return problems


def groups_of_at_least_k(r: Release) -> list[str]:
    """No row of a group below k contributors, and no value published for such a (blanked) group."""
    if (size := r.rules.group_size_column) is None:
        return []
    if size not in r.frame:
        return [f"group size column {size!r} missing"]
    problems = []
    if (n := int(_small(r.frame[size], r.k).sum())):
        problems.append(f"{n} row(s) with fewer than {r.k} contributors")
    blank = r.frame[size].isna()
    for column in r.rules.value_columns:
        if column in r.frame and (n := int((blank & r.frame[column].notna()).sum())):
            problems.append(f"{n} value(s) of {column!r} published for a group below k")
    return problems


def every_contributor_consented(r: Release) -> list[str]:
    """With a consent basis, every contributor holds an active consent of the dataset's purpose."""
    if r.rules.basis != "consent" or r.rules.consent is None:
        return []
    if (n := len(set(r.contributors) - set(r.consented or ()))):
        return [f"{n} contributor(s) without an active {r.rules.consent.category}/{r.rules.consent.purpose} consent"]
    return []


def coordinates_coarse_enough(r: Release) -> list[str]:
    """Coordinates rounded to at most the rules' decimals."""
    decimals = r.rules.coordinate_decimals
    if decimals is None:
        return []
    return [f"{column} finer than {decimals} decimals"
            for column in (LAT, LON) if column in r.frame and _too_precise(r.frame[column], decimals)]


def times_coarse_enough(r: Release) -> list[str]:
    """Every time column floored to the rules' time bucket."""
    if not r.rules.time_bucket:
        return []
    problems = []
    for column in r.frame.columns:
        if pd.api.types.is_datetime64_any_dtype(r.frame[column]):
            times = r.frame[column].dropna()
            if (times != times.dt.floor(BUCKETS[r.rules.time_bucket])).any():
                problems.append(f"{column} finer than {r.rules.time_bucket}")
    return problems


#: The gate's rules, each a function of a :class:`Release` returning its problems (empty: it holds).
RULES: tuple[Callable[[Release], list[str]], ...] = (
    no_identifying_columns, counts_zero_or_at_least_k, groups_of_at_least_k, every_contributor_consented,
    coordinates_coarse_enough, times_coarse_enough)


def check(frame: pd.DataFrame, rules: Anonymisation, k: int, contributors: Iterable[str] = (),
          consented: Iterable[str] | None = None) -> list[str]:
    """Every way ``frame`` breaks ``rules`` (empty when it may be published): the problems of each of :data:`RULES`."""
    release = Release(frame, rules, k, contributors, consented)
    return [problem for rule in RULES for problem in rule(release)]
