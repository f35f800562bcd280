"""Energy by area: each district shown at the finest level with k homes; published groups never overlap."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cityos.gis.analyses.energy_areas import HomeHour, assign_levels, energy_by_area, town_of


def test_town_is_the_district_name_without_its_chome():
    assert town_of("門田町4丁目") == "門田町"
    assert town_of("行仁町１２丁目") == "行仁町"
    assert town_of("大戸町") == "大戸町"


def test_a_district_below_k_is_shown_at_its_town_when_the_town_reaches_k():
    rows = [HomeHour(f"h{i}", f"D{i % 3}", f"門田町{i % 3 + 1}丁目", 19, 100.0 * (i + 1)) for i in range(6)]
    out = {r["district_code"]: r for r in energy_by_area(rows, k=5) if r["hour"] == 19}
    assert {r["level"] for r in out.values()} == {"town"}
    assert {r["area"] for r in out.values()} == {"門田町"}
    assert out["D0"]["avg_w_per_home"] == 350.0 and out["D0"]["homes"] == 6


def test_a_district_at_k_keeps_its_own_value_and_the_rest_pools_at_city_level():
    rows = [HomeHour(f"a{i}", "A", "若松1丁目", 8, 500.0) for i in range(3)]
    rows += [HomeHour("b0", "B", "上町1丁目", 8, 100.0), HomeHour("c0", "C", "中町1丁目", 8, 200.0),
             HomeHour("c1", "C", "中町1丁目", 8, 300.0)]
    out = {r["district_code"]: r for r in energy_by_area(rows, k=3) if r["hour"] == 8}
    assert out["A"]["level"] == "district" and out["A"]["avg_w_per_home"] == 500.0
    assert out["B"]["level"] == out["C"]["level"] == "city" and out["B"]["avg_w_per_home"] == 200.0


def test_too_few_homes_anywhere_are_suppressed():
    rows = [HomeHour("h1", "A", "若松1丁目", 8, 500.0)]
    assert {r["level"] for r in energy_by_area(rows, k=3)} == {"suppressed"}
    assert {r["avg_w_per_home"] for r in energy_by_area(rows, k=3)} == {None}


#: home -> district
homes = st.dictionaries(st.integers(0, 60), st.sampled_from(["A", "B", "C", "D", "E", "F"]), max_size=60)


@given(homes, st.integers(1, 12))
def test_published_groups_partition_the_homes_and_each_has_at_least_k(home_district, k):
    by_district: dict[str, set[str]] = {}
    for home, district in home_district.items():
        by_district.setdefault(district, set()).add(f"h{home}")
    towns = {"A": "T1", "B": "T1", "C": "T2", "D": "T2", "E": "T3", "F": "T3"}
    levels = assign_levels(by_district, towns, k)
    groups: dict[tuple[str, str], set[str]] = {}
    for district, (level, area) in levels.items():
        if level != "suppressed":
            groups.setdefault((level, area), set()).update(by_district[district])
    for members in groups.values():
        assert len(members) >= k
    seen: set[str] = set()
    for members in groups.values():
        assert not (seen & members)
        seen |= members
