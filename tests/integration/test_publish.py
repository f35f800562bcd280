"""Publishing to the real local CKAN with ckanapi: idempotent, in place, consent-aware, gated, resumable."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import psycopg
import pytest
from ckanapi import NotFound, RemoteCKAN

from cityos.opendata import builders
from cityos.opendata.anonymise import GateError, Table
from cityos.opendata.definitions import DATASETS_DIR
from cityos.opendata.run import run
from cityos.platform import consent
from cityos.platform.exits import EXITS, Use

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # fixed, so "last N days" windows do not move between runs
YESTERDAY_JST = datetime(2026, 11, 19, 3, 0, tzinfo=UTC)  # 12:00 JST on 2026-11-19
HOMES = 12


@builders.builder("test_empty")
def _empty(conn, ctx) -> Table:
    """A dataset whose source has no rows this time."""
    return Table(pd.DataFrame({"stop_id": pd.Series(dtype=str), "name": pd.Series(dtype=str)}))


@builders.builder("test_leaky")
def _leaky(conn, ctx) -> Table:
    """A faulty builder: it forgets the consent filter (the gate must catch it)."""
    return Table(pd.DataFrame({"homes": [12], "kwh": [1.0]}), frozenset({"nobody-consented"}))


EXITS["dataset:test_leaky"] = Use("consent", "energy", "open_data")  # declared like every dataset's source


def _definitions(folder: Path, prefix: str, names: list[str] | None = None) -> Path:
    """The shipped definitions renamed ``prefix-NAME`` under a test organization (no clash with the demo)."""
    folder.mkdir(parents=True, exist_ok=True)
    portal = (DATASETS_DIR / "portal.toml").read_text(encoding="utf-8")
    (folder / "portal.toml").write_text(portal.replace('name = "aizuwakamatsu-city"', f'name = "{prefix}-org"'),
                                        encoding="utf-8")
    for path in sorted(DATASETS_DIR.glob("*.toml")):
        if path.name == "portal.toml" or (names and path.stem not in names):
            continue
        text = path.read_text(encoding="utf-8").replace(f'name = "{path.stem}"', f'name = "{prefix}-{path.stem}"', 1)
        (folder / f"{prefix}-{path.stem}.toml").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def city(database_url):
    """A hand-checkable city: one district, 12 opted-in HEMS homes, three hydrants, two bus stops."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("insert into gis.districts (code, name_ja, geom) values ('P1', '公開町', "
                     "st_multi(st_makeenvelope(139.90, 37.48, 139.95, 37.51, 4326))) on conflict do nothing")
        for n in range(1, HOMES + 1):
            device, subject = f"pub-home-{n:02d}", f"pub-subject-{n:02d}"
            conn.execute("insert into core.devices (device_id, domain, owner_subject, district_code) "
                         "values (%s, 'hems', %s, 'P1') on conflict do nothing", (device, subject))
            conn.execute("insert into telemetry.energy_readings (time, device_id, metric, value) values "
                         "(%s, %s, 'import_kwh', 100), (%s, %s, 'import_kwh', %s) on conflict do nothing",
                         (YESTERDAY_JST, device, YESTERDAY_JST + timedelta(hours=5), device, 100 + n))
            consent.grant(conn, subject, "energy", "open_data", "test")
        for n in range(1, 4):
            conn.execute("insert into gis.fire_water (id, kind, address, geom) values (%s, '消火栓', '公開町1', "
                         "st_setsrid(st_point(139.92 + %s / 1000.0, 37.49), 4326)) on conflict do nothing",
                         (f"PUB{n}", n))
        conn.execute("insert into gis.bus_stops (stop_id, name, boardings_per_day, geom) values "
                     "('PB1', '公開町', 120, st_setsrid(st_point(139.93, 37.495), 4326)), "
                     "('PB2', '公開町東', 40, st_setsrid(st_point(139.94, 37.495), 4326)) on conflict do nothing")
    return database_url


@pytest.fixture(scope="module")
def publishing(settings, city):
    """Settings that publish the test database to the local CKAN."""
    if not settings.ckan_url or not settings.ckan_token:
        pytest.fail("no CKAN: `cityos test` brings up the local CKAN (or set CITYOS_CKAN_URL and CITYOS_CKAN_TOKEN)")
    return settings.model_copy(update={"database_url": city})


@pytest.fixture(scope="module")
def ckan(publishing) -> RemoteCKAN:
    return RemoteCKAN(publishing.ckan_url, apikey=publishing.ckan_token)


@pytest.fixture(scope="module")
def published(publishing, tmp_path_factory):
    """One full publish run of every dataset; returns (prefix, folder, report)."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    folder = _definitions(tmp_path_factory.mktemp("defs"), prefix)
    report = run(publishing, folder=folder, now=NOW)
    return prefix, folder, report


def _download(ckan: RemoteCKAN, dataset: str, resource: str) -> bytes:
    package = ckan.action.package_show(id=dataset)
    url = next(r["url"] for r in package["resources"] if r["name"] == resource)
    response = httpx.get(url, headers={"Authorization": ckan.apikey}, follow_redirects=True, timeout=30)
    response.raise_for_status()
    return response.content


def _energy_rows(ckan: RemoteCKAN, prefix: str) -> list[dict]:
    data = _download(ckan, f"{prefix}-energy-by-district-day", "energy-by-district-day").decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(data)))


def test_a_run_creates_every_dataset_with_its_metadata(published, ckan):
    prefix, _, report = published
    assert {r.status for r in report.results} <= {"published", "skipped"}, [r.error for r in report.results]
    assert "skipped" not in {r.status for r in report.results if r.name.endswith(("-fire-water-facilities",
                                                                                   "-bus-stops"))}
    package = ckan.action.package_show(id=f"{prefix}-fire-water-facilities")
    assert package["title"] == "消防水利施設一覧"
    assert package["organization"]["name"] == f"{prefix}-org"
    assert package["license_id"] == "pdl-1.0"
    assert {"消火栓", "hydrant"} <= {t["name"] for t in package["tags"]}
    extras = {e["key"]: e["value"] for e in package["extras"]}
    assert extras["title_en"].startswith("Fire-water facilities") and extras["frequency"] == "daily"
    assert '"Polygon"' in extras["spatial"]
    assert [r["format"] for r in package["resources"]] == ["CSV", "GeoJSON"]


def test_the_uploaded_file_is_the_standard_format_csv(published, ckan):
    prefix = published[0]
    rows = list(csv.DictReader(io.StringIO(
        _download(ckan, f"{prefix}-fire-water-facilities", "fire-water-facilities").decode("utf-8-sig"))))
    assert [r["ID"] for r in rows if r["ID"].startswith("PUB")] == ["PUB1", "PUB2", "PUB3"]
    first = next(r for r in rows if r["ID"] == "PUB1")
    assert first["全国地方公共団体コード"] == "072028" and first["緯度"] == "37.49"


def test_the_live_feed_is_a_url_resource(published, ckan):
    package = ckan.action.package_show(id=f"{published[0]}-snowplow-tracks")
    live = next(r for r in package["resources"] if r["name"] == "snowplow-live-feed")
    assert live["url"].endswith("/api/v1/live/snowplows")


def test_energy_per_district_counts_the_opted_in_homes(published, ckan):
    rows = _energy_rows(ckan, published[0])
    assert rows == [{"district_code": "P1", "day": "2026-11-19", "homes": "12", "kwh_per_home": "6.5"}]


def test_a_rerun_with_unchanged_data_changes_nothing(published, publishing, ckan):
    prefix, folder, _ = published
    before = ckan.action.package_show(id=f"{prefix}-bus-stops")
    report = run(publishing, folder=folder, now=NOW)
    assert {r.status for r in report.results} <= {"unchanged", "skipped"}, [(r.name, r.changes) for r in report.results]
    after = ckan.action.package_show(id=f"{prefix}-bus-stops")
    assert after["metadata_modified"] == before["metadata_modified"]


def test_changed_data_updates_the_resource_in_place(published, publishing, ckan, city):
    prefix, folder, _ = published
    name = f"{prefix}-fire-water-facilities"
    ids_before = [r["id"] for r in ckan.action.package_show(id=name)["resources"]]
    with psycopg.connect(city, autocommit=True) as conn:
        conn.execute("insert into gis.fire_water (id, kind, geom) values "
                     "('PUB4', '防火水槽', st_setsrid(st_point(139.925, 37.492), 4326))")
    report = run(publishing, folder=folder, now=NOW, only=[name])
    assert report.results[0].status == "published"
    assert [r["id"] for r in ckan.action.package_show(id=name)["resources"]] == ids_before
    assert b"PUB4" in _download(ckan, name, "fire-water-facilities")


def test_a_withdrawal_takes_effect_at_the_next_run(published, publishing, ckan, city):
    prefix, folder, _ = published
    with psycopg.connect(city, autocommit=True) as conn:
        for n in (10, 11, 12):
            consent.withdraw(conn, f"pub-subject-{n:02d}", "energy", "open_data", "test")
    run(publishing, folder=folder, now=NOW, only=[f"{prefix}-energy-by-district-day"])
    rows = _energy_rows(ckan, prefix)
    assert rows == [{"district_code": "P1", "day": "2026-11-19", "homes": "", "kwh_per_home": ""}]


def test_a_dry_run_shows_the_changes_and_makes_none(publishing, ckan, tmp_path):
    prefix = f"t{uuid.uuid4().hex[:8]}"
    folder = _definitions(tmp_path, prefix, ["bus-stops"])
    report = run(publishing, folder=folder, now=NOW, dry_run=True)
    described = [c.describe() for c in report.results[0].changes]
    assert f"create dataset {prefix}-bus-stops" in described and any("create resource bus-stops " in d
                                                                   for d in described)
    with pytest.raises(NotFound):
        ckan.action.package_show(id=f"{prefix}-bus-stops")


def test_the_gate_refuses_the_whole_run_and_uploads_nothing(publishing, ckan, tmp_path):
    prefix = f"t{uuid.uuid4().hex[:8]}"
    folder = _definitions(tmp_path, prefix, ["bus-stops"])
    (folder / f"{prefix}-leaky.toml").write_text(f'''
name = "{prefix}-leaky"
title_ja = "漏れ"
title_en = "Leaky"
description_ja = "x"
description_en = "x"
[source]
builder = "test_leaky"
[anonymisation]
basis = "consent"
consent = {{ category = "energy" }}
group_size_column = "homes"
[[resources]]
name = "leaky"
format = "csv"
''', encoding="utf-8")
    with pytest.raises(GateError, match="contributor\\(s\\) without an active energy/open_data consent"):
        run(publishing, folder=folder, now=NOW)
    with pytest.raises(NotFound):
        ckan.action.package_show(id=f"{prefix}-bus-stops")


def test_a_dataset_without_rows_is_skipped_with_its_reason_not_uploaded_header_only(publishing, ckan, tmp_path):
    prefix = f"t{uuid.uuid4().hex[:8]}"
    folder = _definitions(tmp_path, prefix, ["bus-stops"])
    (folder / f"{prefix}-empty.toml").write_text(f'''
name = "{prefix}-empty"
title_ja = "空"
title_en = "Empty"
description_ja = "x"
description_en = "x"
[source]
builder = "test_empty"
[anonymisation]
basis = "non_personal"
[[resources]]
name = "empty"
format = "csv"
''', encoding="utf-8")
    report = run(publishing, folder=folder, now=NOW)
    result = {r.name: r for r in report.results}[f"{prefix}-empty"]
    assert result.status == "skipped" and "no rows" in result.note and "header" in result.note
    with pytest.raises(NotFound):
        ckan.action.package_show(id=f"{prefix}-empty")
    with psycopg.connect(publishing.database_url) as conn:
        logged = conn.execute("select status, error, rows from opendata.publish_log where run_id = %s and dataset = %s",
                              (report.run_id, f"{prefix}-empty")).fetchone()
    assert logged[0] == "skipped" and "no rows" in logged[1] and logged[2] == 0


class _Interrupted(RemoteCKAN):
    """The real client, cut off after ``budget`` write calls (as if the network failed mid-run)."""

    def __init__(self, real: RemoteCKAN, budget: int):
        super().__init__(real.address, apikey=real.apikey)
        self.budget = budget

    def call_action(self, action, data_dict=None, *args, **kwargs):
        if not action.endswith("_show"):
            self.budget -= 1
            if self.budget < 0:
                raise ConnectionError("network down (simulated interruption)")
        return super().call_action(action, data_dict, *args, **kwargs)


def test_an_interrupted_run_is_finished_by_the_next_without_duplicates(publishing, ckan, tmp_path):
    prefix = f"t{uuid.uuid4().hex[:8]}"
    folder = _definitions(tmp_path, prefix, ["bus-stops", "fire-water-facilities", "snowplow-tracks"])
    first = run(publishing, folder=folder, now=NOW, wrap_client=lambda real: _Interrupted(real, 5))
    assert "failed" in {r.status for r in first.results}
    second = run(publishing, folder=folder, now=NOW)
    assert {r.status for r in second.results} <= {"published", "unchanged"}
    for name in ("bus-stops", "fire-water-facilities", "snowplow-tracks"):
        resources = [r["name"] for r in ckan.action.package_show(id=f"{prefix}-{name}")["resources"]]
        assert len(resources) == len(set(resources)) >= (1 if name == "snowplow-tracks" else 2)
    assert {r.status for r in run(publishing, folder=folder, now=NOW).results} <= {"unchanged", "skipped"}


def test_published_datasets_are_found_by_package_search(published, ckan):
    prefix = published[0]
    found = ckan.action.package_search(fq=f"organization:{prefix}-org tags:消防", rows=50)
    assert [p["name"] for p in found["results"]] == [f"{prefix}-fire-water-facilities"]
