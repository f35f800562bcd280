"""The attacker of the registry statistics: every published number as an equation over each district's
cube, then differencing along margins, linear solving and linear programming (counts >= 0).

Written independently of :mod:`cityos.gis.analyses.disclosure` (its own category definitions); used by
the property test over random registries and by the integration test against the real API and CKAN.
"""

from __future__ import annotations

from itertools import product

import numpy as np
import pandas as pd

K = 10
# The attacker's own model of the cube: age 0..100+ in five-year bands, sex, distance class.
N_BANDS, SEX, PLACE = 21, ("M", "F", "X"), ("within_300m", "300_500m", "beyond_500m", "no_address")
CELLS = list(product(range(N_BANDS), range(3), range(4)))


def group(ages_: range | None = None, sex: str | None = None, places: tuple[str, ...] | None = None) -> np.ndarray:
    """The 0/1 vector of residents with a band in ``ages_`` (years), sex ``sex`` and place in ``places``."""
    def band_in(b: int) -> bool:
        return ages_ is None or (b * 5 in ages_ and min(b * 5 + 4, 199) in ages_)
    return np.array([float(band_in(b) and (sex is None or SEX[s] == sex) and (places is None or PLACE[p] in places))
                     for b, s, p in CELLS])


AGE_GROUPS = {"age_0_14": range(0, 15), "age_15_64": range(15, 65), "age_65_74": range(65, 75),
              "age_75_plus": range(75, 200)}
PLACED = ("within_300m", "300_500m", "beyond_500m")
BUS = {"residents": (None, PLACED), "residents_65_plus": (range(65, 200), PLACED),
       "within_300m": (None, ("within_300m",)), "within_300m_65_plus": (range(65, 200), ("within_300m",)),
       "within_500m": (None, ("within_300m", "300_500m")),
       "within_500m_65_plus": (range(65, 200), ("within_300m", "300_500m"))}
BAND_LABELS = [f"{lo}-{lo + 4}歳" for lo in range(0, 100, 5)] + ["100歳以上"]


def published_equations(population: pd.DataFrame, coverage: pd.DataFrame, ckan: pd.DataFrame
                        ) -> tuple[dict[str, list[tuple[np.ndarray, float]]], dict[str, list[np.ndarray]]]:
    """Per district, every published number as (vector, value), shares turned back into counts; and
    the vectors of the blank cells."""
    eqs: dict[str, list[tuple[np.ndarray, float]]] = {}
    blanks: dict[str, list[np.ndarray]] = {}

    def add(code: str, vec: np.ndarray, value) -> None:
        if value is not None and not pd.isna(value):
            eqs.setdefault(str(code), []).append((vec, float(value)))
        else:
            blanks.setdefault(str(code), []).append(vec)

    for row in population.to_dict("records"):
        for name, years in AGE_GROUPS.items():
            add(row["district_code"], group(years), row[name])
        add(row["district_code"], group(), row["total"])
        if not pd.isna(row["share_65_plus"]) and not pd.isna(row["total"]):
            add(row["district_code"], group(range(65, 200)), round(row["share_65_plus"] * row["total"]))
    for row in coverage.to_dict("records"):
        for name, (years, places) in BUS.items():
            add(row["district_code"], group(years, places=places), row[name])
        for radius in (300, 500):
            for suffix, whole in (("", "residents"), ("_65_plus", "residents_65_plus")):
                share, of = row[f"share_{radius}m{suffix}"], row[whole]
                if not pd.isna(share) and not pd.isna(of):
                    years, places = BUS[f"within_{radius}m{suffix}"]
                    add(row["district_code"], group(years, places=places), round(share * of))
    for row in ckan.to_dict("records"):
        band = BAND_LABELS.index(row["age_band"])
        years = range(band * 5, 200 if band == 20 else band * 5 + 5)
        add(row["district_code"], group(years), row["total"])
        add(row["district_code"], group(years, "M"), row["male"])
        add(row["district_code"], group(years, "F"), row["female"])
    return eqs, blanks


def secret_groups() -> list[tuple[str, np.ndarray]]:
    """Every group the tables' categories define: any band, group or 65+/under-65 by any sex by any place set."""
    age_sets = {f"band {b}": range(b * 5, 200 if b == 20 else b * 5 + 5) for b in range(N_BANDS)}
    age_sets |= {**AGE_GROUPS, "65+": range(65, 200), "<65": range(0, 65), "all": None}
    place_sets = {p: (p,) for p in PLACE} | {"placed": PLACED, "<=500m": ("within_300m", "300_500m"),
                                               ">300m": ("300_500m", "beyond_500m"), "all": None}
    return [(f"{a}/{s or 'all'}/{p}", group(years, s, places))
            for (a, years), s, (p, places) in product(age_sets.items(), (None, *SEX), place_sets.items())]


SECRETS = secret_groups()


def differencing(eqs: list[tuple[np.ndarray, float]]) -> list[tuple[np.ndarray, float]]:
    """Everything subtraction along margins yields: whenever one known group contains others that are
    disjoint, the rest is known too; repeated until nothing new appears."""
    known = {tuple(v): value for v, value in eqs}
    changed = True
    while changed:
        changed = False
        items = list(known.items())
        for whole, total in items:
            w = np.array(whole)
            parts = [(np.array(v), x) for v, x in items if v != whole and np.all(np.array(v) <= w)]
            rest, left = w.copy(), total
            for v, x in sorted(parts, key=lambda p: -p[0].sum()):
                if np.all(v <= rest):
                    rest, left = rest - v, left - x
            if rest.any() and tuple(rest) not in known:
                known[tuple(rest)] = left
                changed = True
    return [(np.array(v), x) for v, x in known.items()]


class Attacker:
    """Everything one district's published numbers give away."""

    def __init__(self, eqs: list[tuple[np.ndarray, float]]):
        self.derived = {tuple(v): x for v, x in differencing(eqs)}
        matrix = np.array([v for v, _ in eqs]) if eqs else np.zeros((0, len(CELLS)))
        values = np.array([x for _, x in eqs])
        # published zeros pin every cell they contain
        self.free = ~matrix[values == 0].any(axis=0) if eqs else np.ones(len(CELLS), dtype=bool)
        self.matrix, self.values = matrix[:, self.free], values
        self.rank = np.linalg.matrix_rank(self.matrix) if eqs else 0

    def recovers(self, secret: np.ndarray, truth: float, lp: bool = False) -> str | None:
        """How the attacker pins ``secret`` down (None when it cannot)."""
        if tuple(secret) in self.derived:
            assert self.derived[tuple(secret)] == truth
            return "differencing"
        s = secret[self.free]
        if not s.any():
            return "zeros"
        if np.linalg.matrix_rank(np.vstack([self.matrix, s])) == self.rank:
            return "linear solving"
        if lp and len(self.values):
            from scipy.optimize import linprog

            bounds = [(0, None)] * int(self.free.sum())
            low = linprog(s, A_eq=self.matrix, b_eq=self.values, bounds=bounds, method="highs")
            high = linprog(-s, A_eq=self.matrix, b_eq=self.values, bounds=bounds, method="highs")
            if low.status == 0 and high.status == 0 and abs(low.fun + high.fun) < 1e-6:
                return "linear programming"
        return None


def truth(people: pd.DataFrame, code: str) -> np.ndarray:
    """The true counts of one district's cube (``age``, ``sex``, ``place`` per resident)."""
    mine = people[people["district_code"] == code]
    band = np.minimum(mine["age"].to_numpy() // 5, 20)
    counts = np.zeros(len(CELLS))
    for b, s, p in zip(band, mine["sex"], mine["place"], strict=True):
        counts[CELLS.index((int(b), SEX.index(s), PLACE.index(p)))] += 1
    return counts


def findings(eqs: dict, blanks: dict, people: pd.DataFrame, k: int) -> list[str]:
    """Every group of 1..k-1 residents the attacker recovers, described (empty when none)."""
    out = []
    for code in sorted(set(people["district_code"])):
        counts, attacker = truth(people, code), Attacker(eqs.get(code, []))
        for name, secret in SECRETS:
            value = float(secret @ counts)
            if 0 < value < k and (how := attacker.recovers(secret, value)):
                out.append(f"{code}: {name} = {value:.0f} recovered by {how}")
        for secret in blanks.get(code, []):  # the blanked cells also against bounds from counts >= 0
            value = float(secret @ counts)
            if 0 < value < k and (how := attacker.recovers(secret, value, lp=True)):
                out.append(f"{code}: a blank of {value:.0f} recovered by {how}")
    return out
