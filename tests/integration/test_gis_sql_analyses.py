"""Snowplow coverage, energy by district and vacant-house candidates on hand-made fixtures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cityos.gis.analyses.city_sql import energy_by_district, snowplow_coverage, vacant_house_candidates
from cityos.ingest.devices import add_device
from cityos.platform.exits import API_ENERGY_BY_DISTRICT

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture()
def clean(db):
    db.execute("delete from gis.roads")
    db.execute("delete from core.devices where device_id like 'fx-%'")
    db.execute("delete from telemetry.vehicle_positions where device_id like 'fx-%'")
    db.execute("delete from telemetry.energy_readings where device_id like 'fx-%'")
    db.execute("delete from gis.addresses where address_id like 'FX%'")
    db.execute("delete from registry.residents where person_id like 'FX%'")
    return db


def test_road_passed_with_the_blade_down_is_plowed_and_others_are_not(clean):
    db = clean
    db.execute("""insert into gis.roads (road_id, name, geom) values
        ('R1', '北通り', st_geomfromtext('LINESTRING(139.930 37.490, 139.940 37.490)', 4326)),
        ('R2', '南通り', st_geomfromtext('LINESTRING(139.930 37.480, 139.940 37.480)', 4326)),
        ('R3', '東通り', st_geomfromtext('LINESTRING(139.950 37.470, 139.950 37.500)', 4326))""")
    add_device(db, "fx-plow1", "vehicle", kind="snowplow", public=True)
    db.execute("""insert into telemetry.vehicle_positions (time, device_id, geom, blade_down) values
        (%(t1)s, 'fx-plow1', st_setsrid(st_point(139.935, 37.49005), 4326), true),   -- 5.6 m from R1
        (%(t2)s, 'fx-plow1', st_setsrid(st_point(139.935, 37.48040), 4326), false),  -- on R2, blade up
        (%(t3)s, 'fx-plow1', st_setsrid(st_point(139.9503, 37.48), 4326), true)      -- 26 m from R3
        """, {"t1": NOW - timedelta(hours=1), "t2": NOW - timedelta(minutes=50), "t3": NOW - timedelta(minutes=40)})
    roads = {r["road_id"]: r for r in snowplow_coverage(db, NOW - timedelta(hours=6))}
    assert roads["R1"]["plowed"] and roads["R1"]["last_plowed"] == NOW - timedelta(hours=1)
    assert not roads["R2"]["plowed"]
    assert not roads["R3"]["plowed"]
    assert not {r["road_id"] for r in snowplow_coverage(db, NOW - timedelta(minutes=30)) if r["plowed"]}


def _home(db, device_id: str, district: str, subject: str, consent: bool, watts: float, address: str = "") -> None:
    add_device(db, device_id, "hems", owner_subject=subject, district_code=district,
               metadata={"address_id": address} if address else None)
    if consent:
        db.execute("insert into core.consent_events (subject_id, category, purpose, action, actor) "
                   "values (%s, 'energy', 'open_data', 'grant', 'test')", (subject,))
    db.execute("""insert into telemetry.energy_readings (time, device_id, metric, value)
                  select %(end)s - make_interval(hours => h), %(d)s, 'power_w', %(w)s
                  from generate_series(1, 24 * 13) h""", {"end": NOW, "d": device_id, "w": watts})


def test_energy_by_district_counts_only_consenting_homes_and_blanks_small_districts(clean):
    db = clean
    for i in range(3):
        _home(db, f"fx-h{i}", "D1", f"fx-s{i}", consent=True, watts=400 + 100 * i)
    _home(db, "fx-h9", "D1", "fx-s9", consent=False, watts=5000)
    _home(db, "fx-h8", "D2", "fx-s8", consent=True, watts=300)
    rows = [r for r in energy_by_district(db, NOW, 3, API_ENERGY_BY_DISTRICT) if r["district_code"] in ("D1", "D2")]
    d1 = [r for r in rows if r["district_code"] == "D1"]
    assert {r["homes"] for r in d1} == {3}
    assert {float(r["avg_w_per_home"]) for r in d1} == {500.0}
    assert all(r["homes"] is None and r["avg_w_per_home"] is None for r in rows if r["district_code"] == "D2")


def test_vacant_candidate_has_no_resident_and_an_idle_meter(clean):
    db = clean
    db.execute("""insert into gis.addresses (address_id, district_code, geom) values
        ('FX1', 'D1', st_setsrid(st_point(139.93, 37.49), 4326)),
        ('FX2', 'D1', st_setsrid(st_point(139.931, 37.49), 4326)),
        ('FX3', 'D1', st_setsrid(st_point(139.932, 37.49), 4326))""")
    db.execute("""insert into registry.residents (person_id, household_id, district_code, address_id, birth_date, sex)
                  values ('FX-P1', 'FX-H1', 'D1', 'FX2', '1950-01-01', 'F')""")
    _home(db, "fx-v1", "D1", "fx-sv1", consent=False, watts=3, address="FX1")    # empty, idle: candidate
    _home(db, "fx-v2", "D1", "fx-sv2", consent=False, watts=3, address="FX2")    # idle but someone lives there
    _home(db, "fx-v3", "D1", "fx-sv3", consent=False, watts=350, address="FX3")  # empty but in use
    assert [r["address_id"] for r in vacant_house_candidates(db, NOW, days=10)] == ["FX1"]
