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

from collections.abc import Iterable, Mapping
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


def check(frame: pd.DataFrame, rules: Anonymisation, k: int, contributors: Iterable[str] = (),
          consented: Iterable[str] | None = None) -> list[str]:
    """Every way ``frame`` breaks ``rules`` (empty when it may be published)."""
    problems: list[str] = []
    forbidden = set(IDENTIFYING_COLUMNS) | (set(DEVICE_COLUMNS) if rules.basis != "non_personal" else set())
    if found := sorted(forbidden & set(frame.columns)):
        problems.append(f"identifying columns present: {', '.join(found)}")
    for column in rules.count_columns:
        if column not in frame:
            problems.append(f"count column {column!r} missing")
        elif (n := int(_small(frame[column], k).sum())):
            problems.append(f"{n} cell(s) of {column!r} between 1 and {k - 1}")
    if (size := rules.group_size_column) is not None:
        if size not in frame:
            problems.append(f"group size column {size!r} missing")
        else:
            if (n := int(_small(frame[size], k).sum())):
                problems.append(f"{n} row(s) with fewer than {k} contributors")
            blank = frame[size].isna()
            for column in rules.value_columns:
                if column in frame and (n := int((blank & frame[column].notna()).sum())):
                    problems.append(f"{n} value(s) of {column!r} published for a group below k")
    if rules.basis == "consent":
        allowed = set(consented or ())
        if (n := len(set(contributors) - allowed)):
            problems.append(f"{n} contributor(s) without an active {rules.consent.category}/"  # type: ignore[union-attr]
                            f"{rules.consent.purpose} consent")  # type: ignore[union-attr]
    if rules.coordinate_decimals is not None:
        for column in (LAT, LON):
            if column in frame and _too_precise(frame[column], rules.coordinate_decimals):
                problems.append(f"{column} finer than {rules.coordinate_decimals} decimals")
    if rules.time_bucket:
        for column in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[column]):
                times = frame[column].dropna()
                if (times != times.dt.floor(BUCKETS[rules.time_bucket])).any():
                    problems.append(f"{column} finer than {rules.time_bucket}")
    return problems
