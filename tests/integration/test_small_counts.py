"""Small counts stay hidden across the real API and the real CKAN: the differencing attacks of issue 14.

A district is planted with the cells the review recovered: one resident aged 100+, three aged 95-99,
a few without an address point or far from a stop. The population table is published to the local
CKAN, the anonymous routes are read from the API process, and the attacker of
tests/disclosure_attacker.py combines them all.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
import pandas as pd
import psycopg
import pytest
from disclosure_attacker import findings, published_equations

from cityos.gis.statistics import latest_reference_date
from cityos.opendata.definitions import DATASETS_DIR
from cityos.opendata.run import run
from cityos.platform import consent
from cityos.platform.auth import create_token

NOW = datetime.now(UTC)
REF = latest_reference_date(NOW)
K = 10
API_ENV = {"CITYOS_ANONYMOUS_RATE_PER_MINUTE": "10000"}
#: (age, sex, place, how many): the planted district SDC1 (place: near 88 m, mid 442 m, far 1.8 km, none).
SDC1 = [(35, "F", "near", 30), (36, "M", "near", 14), (80, "M", "near", 15), (82, "F", "mid", 6), (101, "F", "near", 1),
        (96, "F", "near", 3), (10, "M", "far", 7), (11, "F", "near", 5), (70, "X", "none", 2), (72, "F", "near", 9)]
PLACES = {"near": ("SDC-A1", "within_300m"), "mid": ("SDC-A2", "300_500m"), "far": ("SDC-A3", "beyond_500m"),
          "none": (None, "no_address")}
CKAN_COLUMNS = {"地域コード": "district_code", "年齢": "age_band", "総数": "total", "男": "male", "女": "female"}


def _definitions(folder, prefix: str):
    """The shipped population definition renamed ``prefix-...`` under a test organization."""
    portal = (DATASETS_DIR / "portal.toml").read_text(encoding="utf-8")
    (folder / "portal.toml").write_text(portal.replace('name = "aizuwakamatsu-city"', f'name = "{prefix}-org"'),
                                        encoding="utf-8")
    stem = "population-by-district-age"
    text = (DATASETS_DIR / f"{stem}.toml").read_text(encoding="utf-8")
    (folder / f"{prefix}-{stem}.toml").write_text(text.replace(f'name = "{stem}"', f'name = "{prefix}-{stem}"', 1),
                                                  encoding="utf-8")
    return folder


def _born(age: int) -> date:
    return (pd.Timestamp(REF) - pd.DateOffset(years=age, months=6)).date()


@pytest.fixture(scope="module")
def registry(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("insert into gis.districts (code, name_ja, geom) values ('SDC1', '秘匿町', "
                     "st_multi(st_makeenvelope(139.79, 37.39, 139.83, 37.41, 4326))) on conflict do nothing")
        conn.execute("insert into gis.bus_stops (stop_id, name, boardings_per_day, geom) values "
                     "('SDC-S1', '秘匿町', 50, st_setsrid(st_point(139.80, 37.40), 4326)) on conflict do nothing")
        for address, lon in (("SDC-A1", 139.801), ("SDC-A2", 139.805), ("SDC-A3", 139.82)):
            conn.execute("insert into gis.addresses (address_id, district_code, geom) values "
                         "(%s, 'SDC1', st_setsrid(st_point(%s, 37.40), 4326)) on conflict do nothing", (address, lon))
        conn.execute("delete from registry.residents where person_id like 'SDC-%'")
        n = 0
        for age, sex, place, count in SDC1:
            for _ in range(count):
                n += 1
                conn.execute("insert into registry.residents (person_id, household_id, district_code, address_id, "
                             "birth_date, sex) values (%s, %s, 'SDC1', %s, %s, %s)",
                             (f"SDC-{n}", f"SDC-H{n}", PLACES[place][0], _born(age), sex))
    return database_url


@pytest.fixture(scope="module")
def api(registry, api):  # the shared API (tests/conftest.py), started once the district is planted
    return api


@pytest.fixture(scope="module")
def ckan_rows(settings, registry, tmp_path_factory) -> pd.DataFrame:
    """The population table as published to the real local CKAN and downloaded again."""
    if not settings.ckan_url or not settings.ckan_token:
        pytest.fail("no CKAN: `cityos test` brings up the local CKAN (or set CITYOS_CKAN_URL and CITYOS_CKAN_TOKEN)")
    publishing = settings.model_copy(update={"database_url": registry})
    prefix = f"t{uuid.uuid4().hex[:8]}"
    folder = _definitions(tmp_path_factory.mktemp("defs"), prefix)
    report = run(publishing, folder=folder, now=NOW)
    assert [r.status for r in report.results] == ["published"], [r.error for r in report.results]
    from ckanapi import RemoteCKAN

    ckan = RemoteCKAN(settings.ckan_url, apikey=settings.ckan_token)
    package = ckan.action.package_show(id=f"{prefix}-population-by-district-age")
    response = httpx.get(package["resources"][0]["url"], headers={"Authorization": settings.ckan_token},
                         follow_redirects=True, timeout=30)
    response.raise_for_status()
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    frame = pd.DataFrame(rows).rename(columns=CKAN_COLUMNS)
    for column in ("total", "male", "female"):
        frame[column] = [None if v == "" else int(v) for v in frame[column]]
    assert (frame["調査年月日"] == REF.isoformat()).all()
    return frame[frame["district_code"] == "SDC1"]


def _api_rows(api: str, route: str, **params) -> pd.DataFrame:
    response = httpx.get(f"{api}/api/v1/gis/{route}", params=params, timeout=120)
    assert response.status_code == 200, response.text
    frame = pd.DataFrame(response.json()["items"])
    return frame[frame["district_code"] == "SDC1"]


def _truth() -> pd.DataFrame:
    return pd.DataFrame([{"district_code": "SDC1", "age": age, "sex": sex, "place": PLACES[place][1]}
                         for age, sex, place, count in SDC1 for _ in range(count)])


def test_no_blank_is_recovered_by_combining_the_api_and_the_ckan_table(api, ckan_rows):
    population = _api_rows(api, "population", as_of=REF.isoformat())
    coverage = _api_rows(api, "bus-coverage", as_of=REF.isoformat())
    eqs, blanks = published_equations(population, coverage, ckan_rows)
    assert blanks["SDC1"], "the planted small cells must be blank"
    assert not findings(eqs, blanks, _truth(), K)


def test_the_one_resident_aged_100_is_not_the_group_total_minus_the_published_bands(api, ckan_rows):
    group = _api_rows(api, "population", as_of=REF.isoformat()).iloc[0]["age_75_plus"]
    bands = ckan_rows.set_index("age_band")["total"]
    assert pd.isna(bands["100歳以上"])
    elder = ["75-79歳", "80-84歳", "85-89歳", "90-94歳", "95-99歳"]
    assert pd.isna(group) or sum(pd.isna(bands[b]) for b in elder) >= 1  # the review's move: 75+ minus bands


def test_residents_beyond_500m_are_not_residents_minus_within_500m(api):
    row = _api_rows(api, "bus-coverage", as_of=REF.isoformat()).iloc[0]
    assert pd.isna(row["residents"]) or pd.isna(row["within_500m"])  # 7 live beyond 500 m


def test_a_day_that_is_not_a_reference_date_is_refused_for_anonymous_callers(api):
    day = REF - timedelta(days=1)
    for route in ("population", "bus-coverage"):
        response = httpx.get(f"{api}/api/v1/gis/{route}", params={"as_of": day.isoformat()}, timeout=30)
        assert response.status_code == 400
        assert "reference date" in response.json()["detail"] and REF.isoformat() in response.json()["detail"]


def test_staff_get_exact_figures_of_any_day_and_are_audited(api, registry):
    with psycopg.connect(registry, autocommit=True) as conn:
        token = create_token(conn, "sdc-planner", ["registry:read"])
    assert httpx.get(f"{api}/api/v1/gis/registry/population").status_code == 401
    response = httpx.get(f"{api}/api/v1/gis/registry/population", params={"as_of": REF.isoformat()},
                         headers={"Authorization": f"Bearer {token}"}, timeout=120)
    assert response.status_code == 200 and "no-store" in response.headers["cache-control"]
    row = next(r for r in response.json()["items"] if r["district_code"] == "SDC1")
    assert row["total"] == sum(count for *_, count in SDC1) and row["age_75_plus"] == 25
    with psycopg.connect(registry) as conn:
        audited = conn.execute("select count(*) from core.audit_log where actor = 'sdc-planner' "
                               "and resource = '/api/v1/gis/registry/population'").fetchone()[0]
    assert audited == 1


def test_my_energy_does_not_tell_a_household_how_few_homes_share_its_district(api, registry):
    with psycopg.connect(registry, autocommit=True) as conn:
        for n in (1, 2):
            conn.execute("insert into core.devices (device_id, domain, owner_subject, district_code) values "
                         "(%s, 'hems', %s, 'SDC-E') on conflict do nothing", (f"sdc-home-{n}", f"sdc-subject-{n}"))
            consent.grant(conn, f"sdc-subject-{n}", "energy", "services", "test")
            conn.execute("insert into telemetry.energy_readings (time, device_id, metric, value) values "
                         "(%s, %s, 'power_w', 300) on conflict do nothing", (NOW - timedelta(hours=2), f"sdc-home-{n}"))
        token = create_token(conn, "sdc-household", ["household:sdc-home-1"])
    response = httpx.get(f"{api}/api/v1/energy/my", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200
    hours = response.json()["hours"]
    assert any(h["my_w"] is not None for h in hours)
    assert all(h["homes"] is None and h["district_avg_w"] is None for h in hours)  # 2 homes: below k
