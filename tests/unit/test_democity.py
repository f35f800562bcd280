"""The demo city is deterministic and plausible."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from cityos.gis.analyses.population import ages, living_on, population_by_district
from cityos.gis.democity import generate_city


@pytest.fixture(scope="module")
def city():
    return generate_city(seed=3, residents=6000)


def test_same_seed_gives_the_same_city(city):
    again = generate_city(seed=3, residents=6000)
    assert city.residents.equals(again.residents)
    assert city.districts.geometry.equals(again.districts.geometry)


def test_districts_are_valid_and_do_not_overlap(city):
    assert city.districts.is_valid.all()
    projected = city.districts.to_crs("EPSG:6677")
    assert projected.area.sum() == pytest.approx(projected.union_all().area, rel=1e-6)


def test_every_resident_lives_at_an_address_in_their_district(city):
    addresses = city.addresses.set_index("address_id")
    assert (addresses.loc[city.residents["address_id"], "district_code"].to_numpy()
            == city.residents["district_code"].to_numpy()).all()
    assert len(city.residents) == 6000


def test_about_a_third_of_residents_are_65_or_older(city):
    day = date(2026, 11, 1)
    alive = living_on(city.residents, day)
    people = pd.DataFrame({"district_code": alive["district_code"], "age": ages(alive["birth_date"], day),
                           "sex": alive["sex"], "place": "no_address"})
    table = population_by_district(people, day, k=1)
    elderly = (table["age_65_74"].sum() + table["age_75_plus"].sum()) / table["total"].sum()
    assert 0.28 < elderly < 0.40


def test_some_addresses_have_nobody_registered(city):
    empty = ~city.addresses["address_id"].isin(city.residents["address_id"])
    assert 0.01 < empty.mean() < 0.5


def test_fire_water_is_aizuwakamatsus_real_2014_hydrants_inside_the_real_boundary(city):
    assert len(city.fire_water) == 1974
    assert city.fire_water["kind"].value_counts().to_dict() == {"消火栓": 1733, "防火水槽": 241}
    assert city.fire_water.within(city.boundary.geometry.iloc[0]).all()
    first = city.fire_water.iloc[0]
    assert first["attributes"]["title"] == "19-16-5"
    assert (round(first.geometry.x, 6), round(first.geometry.y, 6)) == (139.907833, 37.580345)


def test_the_city_is_aizuwakamatsus_real_outline_with_every_synthetic_layer_inside(city):
    assert city.boundary[["code", "name"]].values.tolist() == [["07202", "会津若松市"]]
    outline = city.boundary.geometry.iloc[0]
    assert 370e6 < city.boundary.to_crs("EPSG:6677").area.iloc[0] < 400e6  # 382.97 km2 officially
    assert city.addresses.within(outline).all()
    metric = city.boundary.to_crs("EPSG:6677").geometry.iloc[0]
    assert (city.districts.to_crs("EPSG:6677").difference(metric).area < 1.0).all()  # reprojection noise only
    assert city.bus_stops.within(outline.buffer(1e-6)).all()
