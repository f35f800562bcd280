"""Small-cell suppression for counts of people: no published cell between 1 and k-1.

Primary suppression blanks every count below ``k`` (zeros stay: they reveal nobody). When a row
has exactly one blanked cell next to a published total, that cell could be recovered by
subtraction, so the smallest other cell of the row is blanked as well (secondary suppression).
"""

from __future__ import annotations

import pandas as pd


def suppress_counts(table: pd.DataFrame, cells: list[str], k: int, total: str | None = None) -> pd.DataFrame:
    """``table`` with counts in ``cells`` (and ``total``) below ``k`` replaced by <NA>."""
    out = table.copy()
    for column in [*cells, *([total] if total else [])]:
        out[column] = out[column].astype("Int64")
    small = out[cells].apply(lambda col: (col > 0) & (col < k))
    if total:
        row_small = (out[total] > 0) & (out[total] < k)
        small.loc[row_small, :] = out.loc[row_small, cells] > 0
        out.loc[row_small, total] = pd.NA
        for idx in out.index[~row_small]:
            if small.loc[idx].sum() == 1:
                candidates = out.loc[idx, cells][~small.loc[idx]].astype(float)
                candidates = candidates[candidates > 0]
                if len(candidates):
                    small.loc[idx, candidates.idxmin()] = True
    for column in cells:
        out.loc[small[column], column] = pd.NA
    return out


def is_publishable(table: pd.DataFrame, cells: list[str], k: int) -> bool:
    """True when no cell of ``cells`` holds a count between 1 and k-1."""
    values = table[cells].astype("Float64")
    return not ((values > 0) & (values < k)).any().any()
