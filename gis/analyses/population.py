"""Population per district by age group, from the resident registry (aggregated, protected by
:mod:`cityos.gis.analyses.disclosure`)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from cityos.gis.analyses.disclosure import AGE_GROUPS, BAND_NAMES, BANDS, Cell, Statistics, protect

BAND_COLUMNS = list(AGE_GROUPS)
#: Labels of the five-year age bands of the standard 地域・年齢別人口 format (the last one open-ended).
AGE_LABELS = {name: ("100歳以上" if lo == 100 else f"{lo}-{hi}歳") for name, lo, hi in BANDS}


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


def population_table(stats: Statistics) -> pd.DataFrame:
    """Per district: total, counts per age group, share aged 65+, as protected by the disclosure step
    (a blank is <NA>; the share only where both its counts are shown)."""
    rows = []
    for code in stats.districts():
        row: dict[str, object] = {"district_code": code}
        for group in BAND_COLUMNS:
            row[group] = stats.value(code, Cell(group))
        row["total"] = stats.value(code, Cell())
        elderly = stats.value(code, Cell("age_65_plus"))
        row["share_65_plus"] = (round(elderly / row["total"], 4) if elderly is not None and row["total"]
                                else None)
        rows.append(row)
    table = pd.DataFrame(rows, columns=["district_code", *BAND_COLUMNS, "total", "share_65_plus"])
    for column in [*BAND_COLUMNS, "total"]:
        table[column] = table[column].astype("Int64")
    table["share_65_plus"] = table["share_65_plus"].astype("Float64")
    return table


def population_by_band(stats: Statistics, names: dict[str, str]) -> pd.DataFrame:
    """The rows of the standard 地域・年齢別人口 (the open dataset; the city's columns come first there): one per
    district in ``names`` (code -> name) and five-year band, with total, male and female as protected by the
    disclosure step (a blank is <NA>, the same cells as every other output of the date)."""
    rows = [{"as_of": stats.as_of.isoformat(), "district_code": code, "district_name": names[code],
             "age_band": AGE_LABELS[band], "total": stats.value(code, Cell(band)),
             "male": stats.value(code, Cell(band, "M")), "female": stats.value(code, Cell(band, "F"))}
            for code in stats.districts() if code in names for band in BAND_NAMES]
    frame = pd.DataFrame(rows, columns=["as_of", "district_code", "district_name", "age_band", "total", "male",
                                        "female"])
    for column in ("total", "male", "female"):
        frame[column] = frame[column].astype("Int64")
    return frame


def population_by_district(people: pd.DataFrame, as_of: date, k: int = 10) -> pd.DataFrame:
    """:func:`population_table` of ``people`` (one row per resident registered on ``as_of``:
    ``district_code``, ``age``, and ``sex`` and ``place`` as :func:`~cityos.gis.analyses.disclosure.cube_of`
    reads them). Published outputs pass the whole linked microdata (:mod:`cityos.gis.statistics`)."""
    return population_table(protect(people, as_of, k))
