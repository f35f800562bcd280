"""Population per district by age band, from the resident registry (aggregated, suppressed)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from cityos.gis.analyses.suppression import suppress_counts

AGE_BANDS: list[tuple[str, int, int]] = [("age_0_14", 0, 14), ("age_15_64", 15, 64), ("age_65_74", 65, 74),
                                         ("age_75_plus", 75, 200)]
BAND_COLUMNS = [name for name, _, _ in AGE_BANDS]


def ages(birth_dates: pd.Series, as_of: date) -> pd.Series:
    """Completed years of age on ``as_of``."""
    born = pd.to_datetime(birth_dates)
    years = as_of.year - born.dt.year
    before_birthday = (born.dt.month > as_of.month) | ((born.dt.month == as_of.month) & (born.dt.day > as_of.day))
    return years - before_birthday.astype(int)


def living_on(residents: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Residents registered on ``as_of`` (moved in by then, not moved out)."""
    moved_in = pd.to_datetime(residents["moved_in"])
    moved_out = pd.to_datetime(residents["moved_out"])
    day = pd.Timestamp(as_of)
    return residents[(moved_in.isna() | (moved_in <= day)) & (moved_out.isna() | (moved_out > day))]


def population_by_district(residents: pd.DataFrame, as_of: date, k: int = 10) -> pd.DataFrame:
    """Per district: total, counts per age band, share aged 65+; counts below ``k`` suppressed.

    ``residents`` has ``district_code``, ``birth_date``, ``moved_in``, ``moved_out``.
    """
    alive = living_on(residents, as_of)
    age = ages(alive["birth_date"], as_of)
    bands = pd.cut(age, bins=[-1] + [hi for _, _, hi in AGE_BANDS], labels=BAND_COLUMNS)
    counts = pd.crosstab(alive["district_code"], bands).reindex(columns=BAND_COLUMNS, fill_value=0)
    counts.columns = list(counts.columns)
    counts["total"] = counts[BAND_COLUMNS].sum(axis=1)
    counts = counts.reset_index().rename(columns={"index": "district_code"})
    elderly = counts["age_65_74"] + counts["age_75_plus"]
    counts["share_65_plus"] = (elderly / counts["total"]).round(4)
    out = suppress_counts(counts, BAND_COLUMNS, k, total="total")
    out.loc[out["total"].isna(), "share_65_plus"] = pd.NA
    return out.sort_values("district_code").reset_index(drop=True)
