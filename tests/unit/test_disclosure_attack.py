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

The attacker (tests/disclosure_attacker.py) is written independently of
:mod:`cityos.gis.analyses.disclosure`; only the rendering functions are shared, since they are what is
published.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from disclosure_attacker import PLACE, findings, published_equations
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityos.gis.analyses.bus_coverage import coverage_table
from cityos.gis.analyses.disclosure import protect
from cityos.gis.analyses.population import ages, living_on, population_by_band, population_table

K = 10
DATES = (date(2026, 10, 1), date(2026, 11, 1))


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


@pytest.mark.timeout(600)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(residents_strategy())
def test_no_small_group_is_recovered_from_every_published_output_of_two_reference_dates(rows):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        attack(rows)


def attack(rows: list[dict]) -> None:
    for day in DATES:
        people = people_on(rows, day)
        stats = protect(people, day, K)
        eqs, blanks = published_equations(population_table(stats), coverage_table(stats),
                                          population_by_band(stats, {c: c for c in ("D1", "D2", "D3")}))
        found = findings(eqs, blanks, people, K)
        assert not found, f"{day}: {found[:5]}"
