"""GIS analyses on small, hand-checkable fixtures."""

from __future__ import annotations

from datetime import date

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Point

from cityos.gis.analyses.bus_coverage import catchment_by_stop, coverage_by_district
from cityos.gis.analyses.population import ages, living_on, population_by_district
from cityos.gis.analyses.suppression import is_publishable, suppress_counts

AS_OF = date(2026, 11, 24)


def residents(district: str, birth_years: list[int], moved_out: str | None = None) -> pd.DataFrame:
    return pd.DataFrame({"district_code": district, "birth_date": [f"{y}-06-01" for y in birth_years],
                         "moved_in": None, "moved_out": moved_out})


def people(frame: pd.DataFrame, as_of: date = AS_OF) -> pd.DataFrame:
    """The registered residents of ``frame`` on ``as_of`` as the disclosure step reads them (sex X, no address)."""
    alive = living_on(frame, as_of)
    return pd.DataFrame({"district_code": alive["district_code"], "age": ages(alive["birth_date"], as_of),
                         "sex": "F", "place": "within_300m"})


def test_population_counts_each_age_band():
    frame = residents("A", [2020] * 12 + [1990] * 20 + [1958] * 11 + [1940] * 15)
    row = population_by_district(people(frame), AS_OF, k=10).iloc[0]
    bands = (row["age_0_14"], row["age_15_64"], row["age_65_74"], row["age_75_plus"], row["total"])
    assert bands == (12, 20, 11, 15, 58)
    assert row["share_65_plus"] == pytest.approx(26 / 58, abs=1e-4)


def test_population_ignores_people_who_moved_out():
    frame = pd.concat([residents("A", [1990] * 12), residents("A", [1990] * 5, moved_out="2026-01-01")])
    assert population_by_district(people(frame), AS_OF, k=10).iloc[0]["total"] == 12


def test_small_group_is_suppressed_with_a_second_cell_so_it_cannot_be_recovered():
    frame = residents("A", [2020] * 3 + [1990] * 40 + [1958] * 12 + [1940] * 20)
    row = population_by_district(people(frame), AS_OF, k=10).iloc[0]
    assert pd.isna(row["age_0_14"])
    assert pd.isna(row["age_15_64"]) or pd.isna(row["total"])  # 3 = total - 40 - 12 - 20 otherwise
    published = [row[c] for c in ("age_0_14", "age_15_64", "age_65_74", "age_75_plus") if not pd.isna(row[c])]
    assert pd.isna(row["total"]) or row["total"] - sum(published) >= 10


def test_district_below_k_is_suppressed_entirely():
    row = population_by_district(people(residents("B", [1990] * 4 + [1950] * 3)), AS_OF, k=10).iloc[0]
    assert pd.isna(row["total"]) and pd.isna(row["age_15_64"]) and pd.isna(row["share_65_plus"])


def test_suppressed_table_is_publishable():
    table = pd.DataFrame({"a": [1, 30, 0], "b": [25, 9, 40], "total": [26, 39, 40]})
    assert is_publishable(suppress_counts(table, ["a", "b"], 10, total="total"), ["a", "b"], 10)


def people_and_stops():
    # Two districts on a line east of a stop at 139.93, 37.49 (1e-3 degrees of longitude = 88.4 m).
    stop = gpd.GeoDataFrame({"stop_id": ["S1"], "boardings_per_day": [120.0]},
                            geometry=[Point(139.93, 37.49)], crs="EPSG:4326")
    rows = []
    for i in range(12):  # district N: 12 people at 88 m, 4 of them 70 years old
        rows.append({"district_code": "N", "age": 70 if i < 4 else 30, "geometry": Point(139.931, 37.49)})
    for i in range(15):  # district F: 10 at 442 m (within 500), 5 at 884 m; all 80 years old
        lon = 139.935 if i < 10 else 139.94
        rows.append({"district_code": "F", "age": 80, "geometry": Point(lon, 37.49)})
    return gpd.GeoDataFrame(rows, crs="EPSG:4326"), stop


def test_coverage_counts_residents_within_each_radius():
    people, stops = people_and_stops()
    table = coverage_by_district(people, stops, k=3).set_index("district_code")
    assert (table.loc["N", "within_300m"], table.loc["N", "within_500m"]) == (12, 12)
    assert (table.loc["F", "within_300m"], table.loc["F", "within_500m"]) == (0, 10)
    assert table.loc["F", "share_500m_65_plus"] == pytest.approx(10 / 15, abs=1e-4)
    assert bool(table.loc["N", "badly_served"]) is False


def test_badly_served_district_is_flagged():
    people, stops = people_and_stops()
    table = coverage_by_district(people, stops, k=3, poor_share=0.7).set_index("district_code")
    assert bool(table.loc["F", "badly_served"]) is True


def test_stop_catchment_and_boardings_per_resident():
    people, stops = people_and_stops()
    row = catchment_by_stop(people, stops, radius=300, k=3).iloc[0]
    assert row["catchment_residents"] == 12
    assert row["boardings_per_100_residents"] == pytest.approx(1000.0)


def test_harsh_brake_cluster_is_a_latent_hotspot_and_accident_cell_is_not_latent():
    import h3

    from cityos.gis.analyses.hotspots import harsh_brakes, hotspots

    centre = (37.495, 139.93)
    cluster = h3.latlng_to_cell(*centre, 9)
    ring = list(h3.grid_disk(cluster, 4))
    rows = [{"lat": centre[0], "lon": centre[1], "accel_long": -5.0}] * 30
    for cell in h3.grid_disk(cluster, 1):  # the cluster's neighbours brake a little too
        lat, lon = h3.cell_to_latlng(cell)
        rows += [{"lat": lat, "lon": lon, "accel_long": -4.0}] * 4
    for cell in ring[::7]:  # scattered single brakes elsewhere
        lat, lon = h3.cell_to_latlng(cell)
        rows.append({"lat": lat, "lon": lon, "accel_long": -4.2})
    rows.append({"lat": 37.5, "lon": 139.94, "accel_long": -1.0})  # not harsh: ignored
    positions = pd.DataFrame(rows)
    brakes = harsh_brakes(positions)
    assert len(brakes) == len(positions) - 1
    no_accidents = hotspots(brakes, pd.DataFrame({"lat": [], "lon": []}), permutations=199)
    top = no_accidents.iloc[0]
    assert top["cell"] == cluster and bool(top["hot"]) and bool(top["latent"])
    with_accident = hotspots(brakes, pd.DataFrame({"lat": [centre[0]], "lon": [centre[1]]}), permutations=199)
    row = with_accident.set_index("cell").loc[cluster]
    assert bool(row["hot"]) and not bool(row["latent"])
    assert row["accidents"] == 1
