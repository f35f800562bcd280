"""Statistical disclosure control: the one step every published figure of the resident registry passes.

The population table on CKAN, the anonymous population and bus-coverage routes, their exports and
the CLI all show sums of one small cube per district: residents by five-year age band (21), sex
(M, F, X) and distance class to the nearest bus stop (within 300 m, 300-500 m, beyond 500 m, no
address point). Protecting each table on its own is not enough: the API's age groups minus the
CKAN bands, or ``residents - within_500m``, recover a blank cell by subtraction. So the figures of
one reference date are protected together, as one linked set, here:

1. *Primary suppression*: every published cell with 1..k-1 residents is blanked (zeros stay).
2. *Audit*: a group of residents is *disclosed* when its count follows linearly from the published
   figures (they are equations over the cube; a group that is shown or derived to be zero pins its
   cells to zero, since counts are never negative). Checked
   for every group the tables' categories define (:data:`AGE_SETS` x :data:`SEX_SETS` x
   :data:`PLACE_SETS`, which include every base cell, every blank cell and every complement such
   as "aged 65+ living beyond 500 m"), and for the remainder of every margin: when a derivable
   group splits into parts of which some are not derivable, those parts together hold 0 or at
   least k residents.
3. *Secondary suppression*: while the audit finds a group of 1..k-1 residents that can be
   derived, one more published cell is blanked (the smallest that removes that finding, trying
   first the cells the derivation uses). The audit runs again until it finds nothing.

The result is a pure function of the cube and k, so the API, the exports and the CKAN dataset of
the same reference date blank the same cells. Districts are protected independently: no output
publishes a sum over districts (a city total would link them and must be added here first).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from itertools import product

import numpy as np
import pandas as pd

#: Five-year age bands of the standard 地域・年齢別人口 format (the last one open-ended).
BANDS: list[tuple[str, int, int]] = [(f"{lo}_{lo + 4}", lo, lo + 4) for lo in range(0, 100, 5)] + [
    ("100_plus", 100, 200)]
BAND_NAMES = [name for name, _, _ in BANDS]
SEXES = ("M", "F", "X")
PLACES = ("within_300m", "300_500m", "beyond_500m", "no_address")


def _bands(lo: int, hi: int) -> frozenset[int]:
    return frozenset(i for i, (_, b_lo, b_hi) in enumerate(BANDS) if lo <= b_lo and b_hi <= hi)


#: The age groups the outputs use, as sets of band indices.
AGE_GROUPS: dict[str, frozenset[int]] = {
    "age_0_14": _bands(0, 14), "age_15_64": _bands(15, 64), "age_65_74": _bands(65, 74),
    "age_75_plus": _bands(75, 200)}
AGE_SETS: dict[str, frozenset[int]] = {
    **{name: frozenset({i}) for i, name in enumerate(BAND_NAMES)}, **AGE_GROUPS,
    "age_65_plus": _bands(65, 200), "age_under_65": _bands(0, 64), "all": frozenset(range(len(BANDS)))}
SEX_SETS: dict[str, frozenset[int]] = {**{s: frozenset({i}) for i, s in enumerate(SEXES)},
                                       "all": frozenset(range(len(SEXES)))}
PLACE_SETS: dict[str, frozenset[int]] = {
    **{p: frozenset({i}) for i, p in enumerate(PLACES)},
    "placed": frozenset({0, 1, 2}), "within_500m": frozenset({0, 1}), "beyond_300m": frozenset({1, 2}),
    "all": frozenset(range(len(PLACES)))}


@dataclass(frozen=True, order=True)
class Cell:
    """A group of residents of one district: an age set, a sex set and a place set (by name)."""

    age: str = "all"
    sex: str = "all"
    place: str = "all"


#: Every cell that any anonymous or published output shows, per district (the linked set).
PUBLISHED: tuple[Cell, ...] = tuple(dict.fromkeys([
    # CKAN 地域・年齢別人口: per band, total / male / female
    *[Cell(band, sex) for band in BAND_NAMES for sex in ("all", "M", "F")],
    # /api/v1/gis/population: age groups, total, and 65+ (its share)
    *[Cell(group) for group in AGE_GROUPS], Cell(), Cell("age_65_plus"),
    # /api/v1/gis/bus-coverage: residents with an address point, within 300 m / 500 m, all and 65+
    *[Cell(age, "all", place) for place in ("placed", "within_300m", "within_500m")
      for age in ("all", "age_65_plus")],
]))

#: Ways a group splits into parts along one dimension: (dimension, whole, parts).
_SPLITS: list[tuple[str, str, tuple[str, ...]]] = [
    ("age", "all", tuple(AGE_GROUPS)), ("age", "all", ("age_under_65", "age_65_plus")),
    ("age", "all", tuple(BAND_NAMES)),
    *[("age", g, tuple(BAND_NAMES[i] for i in sorted(AGE_SETS[g])))
      for g in (*AGE_GROUPS, "age_65_plus", "age_under_65")],
    ("sex", "all", SEXES),
    ("place", "all", PLACES), ("place", "all", ("placed", "no_address")),
    ("place", "placed", ("within_300m", "300_500m", "beyond_500m")),
    ("place", "placed", ("within_500m", "beyond_500m")), ("place", "placed", ("within_300m", "beyond_300m")),
    ("place", "within_500m", ("within_300m", "300_500m")), ("place", "beyond_300m", ("300_500m", "beyond_500m")),
]

SHAPE = (len(BANDS), len(SEXES), len(PLACES))
CATALOGUE: list[Cell] = [Cell(a, s, p) for a, s, p in product(AGE_SETS, SEX_SETS, PLACE_SETS)]
_INDEX = {cell: i for i, cell in enumerate(CATALOGUE)}


def vector(cell: Cell) -> np.ndarray:
    """The cell as a 0/1 vector over the flattened cube (band, sex, place)."""
    mask = np.zeros(SHAPE, dtype=float)
    mask[np.ix_(sorted(AGE_SETS[cell.age]), sorted(SEX_SETS[cell.sex]), sorted(PLACE_SETS[cell.place]))] = 1
    return mask.ravel()


_VECTORS = np.array([vector(c) for c in CATALOGUE])
_PUBLISHED_IDX = np.array([_INDEX[c] for c in PUBLISHED])


def _margins() -> list[tuple[int, np.ndarray]]:
    """Every split of :data:`_SPLITS` applied to every combination of the other two dimensions."""
    sets = {"age": AGE_SETS, "sex": SEX_SETS, "place": PLACE_SETS}
    out = []
    for dim, whole, parts in _SPLITS:
        first, second = (d for d in ("age", "sex", "place") if d != dim)
        for a, b in product(sets[first], sets[second]):
            cells = [Cell(**{dim: name, first: a, second: b}) for name in (whole, *parts)]
            out.append((_INDEX[cells[0]], np.array([_INDEX[c] for c in cells[1:]])))
    return out


_MARGINS = _margins()


@dataclass(frozen=True)
class Known:
    """What the shown figures determine: base cells pinned to zero, and a basis of the rest (rows)."""

    free: np.ndarray
    basis: np.ndarray


def _known(values: np.ndarray, published: np.ndarray) -> Known:
    """Counts are never negative, so a group that adds up to zero pins each of its cells to zero:
    every such group that follows from the shown figures (a shown zero, or a derived one) is pinned."""
    rows = _VECTORS[_PUBLISHED_IDX[published]]
    zero_rows = rows[values[_PUBLISHED_IDX[published]] == 0]
    free = ~zero_rows.any(axis=0) if len(zero_rows) else np.ones(rows.shape[1], dtype=bool)
    empty = _VECTORS[values == 0]
    while True:
        known = _basis(rows, free)
        empty = empty[(empty[:, free] > 0).any(axis=1)]  # zero groups with a cell not yet pinned
        zeros = empty[derivable(empty, known)].any(axis=0) if len(empty) else free & False
        if not zeros.any():
            return known
        free = free & ~zeros


def _basis(rows: np.ndarray, free: np.ndarray) -> Known:
    matrix = rows[:, free]
    if not len(matrix) or not free.any():
        return Known(free, np.zeros((0, int(free.sum()))))
    _, s, vt = np.linalg.svd(matrix, full_matrices=False)
    return Known(free, vt[s > 1e-9 * max(1.0, s[0])])


def derivable(vectors: np.ndarray, known: Known) -> np.ndarray:
    """Which rows of ``vectors`` (0/1 over the cube) follow linearly from the shown figures."""
    part = vectors[:, known.free]
    residual = part - (part @ known.basis.T) @ known.basis if len(known.basis) else part
    return np.abs(residual).max(axis=1, initial=0.0) < 1e-6


@dataclass(frozen=True)
class Finding:
    """A group of 1..k-1 residents an attacker can derive: a catalogue cell, or the hidden parts of a margin."""

    whole: int
    margin: int = -1

    def describe(self) -> str:
        if self.margin < 0:
            return f"{CATALOGUE[self.whole]} can be derived"
        parts = [CATALOGUE[p] for p in _MARGINS[self.margin][1]]
        return f"the hidden parts of {CATALOGUE[self.whole]} split as {parts} sum to less than k"


def _margin_leaks(margin: int, values: np.ndarray, known: np.ndarray, k: int) -> bool:
    whole, parts = _MARGINS[margin]
    hidden = parts[~known[parts]]
    return bool(known[whole] and len(hidden) > 1 and 0 < values[hidden].sum() < k)


def _findings(values: np.ndarray, published: np.ndarray, k: int, first: bool = True) -> list[Finding]:
    known = derivable(_VECTORS, _known(values, published))
    small = (values > 0) & (values < k)
    out = [Finding(int(i)) for i in np.flatnonzero(known & small)]
    if out and first:
        return out[:1]
    for margin, (whole, _) in enumerate(_MARGINS):
        if _margin_leaks(margin, values, known, k):
            out.append(Finding(whole, margin))
            if first:
                return out
    return out


def _still(finding: Finding, values: np.ndarray, published: np.ndarray, k: int) -> bool:
    basis = _known(values, published)
    if finding.margin < 0:
        return bool(derivable(_VECTORS[[finding.whole]], basis)[0])
    whole, parts = _MARGINS[finding.margin]
    rows = np.concatenate([[whole], parts])
    known = np.zeros(len(_VECTORS), dtype=bool)
    known[rows] = derivable(_VECTORS[rows], basis)
    return _margin_leaks(finding.margin, values, known, k)


def audit(cube: np.ndarray, published: np.ndarray, k: int) -> list[Finding]:
    """Every finding against the shown cells of one district (empty when nothing small can be derived)."""
    return _findings(_VECTORS @ cube.ravel(), published, k, first=False)


def protect_cube(cube: np.ndarray, k: int) -> np.ndarray:
    """For one district's cube (``SHAPE``): which of :data:`PUBLISHED` may be shown (a bool per cell)."""
    values = _VECTORS @ cube.ravel()
    shown = values[_PUBLISHED_IDX]
    published = ~((shown > 0) & (shown < k))
    while findings := _findings(values, published, k):
        finding = findings[0]
        overlap = (_VECTORS[_PUBLISHED_IDX] @ _VECTORS[finding.whole]) > 0
        order = sorted(np.flatnonzero(published), key=lambda i: (not overlap[i], shown[i] == 0, shown[i], i))
        for candidate in order:
            trial = published.copy()
            trial[candidate] = False
            if not _still(finding, values, trial, k):
                published = trial
                break
        else:  # no single cell helps: blank every shown cell that touches the group (always enough)
            published &= ~overlap
    return published


def cube_of(people: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per district, the cube of counts from one row per resident (``district_code``, ``age``, ``sex``,
    ``place``; a sex other than M/F is counted as X, a missing place as no address)."""
    band = np.searchsorted([hi for _, _, hi in BANDS], people["age"].to_numpy(), side="left")
    sex = people["sex"].map({"M": 0, "F": 1}).fillna(2).astype(int).to_numpy()
    place = people["place"].map({p: i for i, p in enumerate(PLACES)}).fillna(3).astype(int).to_numpy()
    cubes: dict[str, np.ndarray] = {}
    for code, b, s, p in zip(people["district_code"].to_numpy(), band, sex, place, strict=True):
        cube = cubes.setdefault(str(code), np.zeros(SHAPE, dtype=np.int64))
        cube[b, s, p] += 1
    return cubes


@dataclass(frozen=True)
class Statistics:
    """The protected figures of one reference date: per district, each published cell's count or None."""

    as_of: date
    k: int
    cells: dict[str, dict[Cell, int | None]]

    def value(self, district: str, cell: Cell) -> int | None:
        return self.cells[district][cell]

    def districts(self) -> Iterator[str]:
        return iter(sorted(self.cells))


def protect(people: pd.DataFrame, as_of: date, k: int) -> Statistics:
    """The protected statistics of ``people`` (see :func:`cube_of`) on ``as_of``."""
    from threadpoolctl import threadpool_limits

    cells = {}
    with threadpool_limits(1):  # hundreds of tiny SVDs: BLAS threads only add overhead
        cubes = cube_of(people)
        protected = {code: protect_cube(cube, k) if k > 1 else np.ones(len(PUBLISHED), dtype=bool)
                     for code, cube in cubes.items()}
    for code, cube in cubes.items():
        values = (_VECTORS[_PUBLISHED_IDX] @ cube.ravel()).round().astype(int)
        shown = protected[code]
        cells[code] = {c: (int(v) if ok else None) for c, v, ok in zip(PUBLISHED, values, shown, strict=True)}
    return Statistics(as_of, k, cells)


def exact(people: pd.DataFrame, as_of: date) -> Statistics:
    """The same figures unprotected (for staff with registry:read only)."""
    return protect(people, as_of, 1)
