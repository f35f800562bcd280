"""An attacker against every published registry figure, over random small registries (hypothesis).

The attacker takes everything an anonymous caller or a CKAN reader gets for two adjacent reference
dates: the population route, the bus-coverage route (with their shares) and the CKAN 地域・年齢別人口
rows, all rendered by the same pure functions the routes, exports and builder call. It knows how the
tables are made (five-year bands, age groups, sexes, distance classes) and writes every published
number as an equation over the unknown counts of each district's cube. Then it tries, per date:

- differencing along every margin (a whole minus its known parts, repeated until nothing new);
- linear solving (a group is recovered when its vector lies in the span of the equations);
- linear programming with counts >= 0 (a group is recovered when its minimum equals its maximum).

No group with 1..k-1 residents may be recovered. The two dates' unknowns are separate cubes: only
reference dates are offered (a month apart), so no equation links them (the day-to-day differences
of the old ``as_of`` are refused by the API, tested in tests/integration/test_gis.py).

The attacker is written independently of :mod:`cityos.gis.analyses.disclosure` (its own category
definitions); only the rendering functions are shared, since they are what is published.
"""

from __future__ import annotations

from datetime import date
from itertools import product

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityos.gis.analyses.bus_coverage import coverage_table
from cityos.gis.analyses.disclosure import protect
from cityos.gis.analyses.population import ages, living_on, population_table
from cityos.opendata.builders import population_frame
from cityos.opendata.definitions import load_portal

K = 10
DATES = (date(2026, 10, 1), date(2026, 11, 1))
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


def residents_strategy():
    """Two districts of a few dozen residents each (big enough to publish, small enough for blanks),
    many born in years that put them at a band's edge on one date and across it on the next."""
    person = st.fixed_dictionaries({
        "district_code": st.sampled_from(["D1", "D1", "D2"]),
        "birth_year": st.one_of(st.integers(1920, 2026), st.sampled_from([1926, 1951, 1952, 1961, 2011])),
        "birth_month": st.integers(1, 12),
        "sex": st.sampled_from(["M", "F", "F", "M", "X"]),
        "place": st.sampled_from(PLACE),
        "moved_out": st.sampled_from([None, None, None, "2026-10-15"]),
    })
    return st.lists(person, min_size=30, max_size=150)


def people_on(rows: list[dict], day: date) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["birth_date"] = [f"{y}-{m:02d}-15" for y, m in zip(frame["birth_year"], frame["birth_month"], strict=True)]
    frame["moved_in"] = None
    frame = frame[pd.to_datetime(frame["birth_date"]) <= pd.Timestamp(day)]
    alive = living_on(frame, day)
    return pd.DataFrame({"district_code": alive["district_code"], "age": ages(alive["birth_date"], day),
                         "sex": alive["sex"], "place": alive["place"]})


def truth(people: pd.DataFrame, code: str) -> np.ndarray:
    mine = people[people["district_code"] == code]
    band = np.minimum(mine["age"].to_numpy() // 5, 20)
    counts = np.zeros(len(CELLS))
    for b, s, p in zip(band, mine["sex"], mine["place"], strict=True):
        counts[CELLS.index((int(b), SEX.index(s), PLACE.index(p)))] += 1
    return counts


@pytest.mark.timeout(600)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(residents_strategy())
def test_no_small_group_is_recovered_from_every_published_output_of_two_reference_dates(rows):
    from threadpoolctl import threadpool_limits

    portal = load_portal()
    with threadpool_limits(1):
        attack(rows, portal)


def attack(rows: list[dict], portal) -> None:
    for day in DATES:
        people = people_on(rows, day)
        stats = protect(people, day, K)
        eqs, blanks = published_equations(population_table(stats), coverage_table(stats),
                                          population_frame(stats, {c: c for c in ("D1", "D2", "D3")}, portal))
        for code in sorted(set(people["district_code"])):
            counts, attacker = truth(people, code), Attacker(eqs.get(code, []))
            for name, secret in SECRETS:
                value = float(secret @ counts)
                if 0 < value < K:
                    how = attacker.recovers(secret, value)
                    assert how is None, f"{day} {code}: {name} = {value:.0f} recovered by {how}"
            for secret in blanks.get(code, []):  # the blanked cells also against bounds from counts >= 0
                value = float(secret @ counts)
                if 0 < value < K:
                    how = attacker.recovers(secret, value, lp=True)
                    assert how is None, f"{day} {code}: a blank of {value:.0f} recovered by {how}"
