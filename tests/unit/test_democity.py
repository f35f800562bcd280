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


def test_fire_water_has_two_thousand_facilities_inside_the_city(city):
    assert len(city.fire_water) == 2000
    assert city.fire_water.within(city.districts.union_all().buffer(0.001)).mean() > 0.99
