"""The resident registry from files: a CP932 extract, daily change files applied idempotently, through the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

DATA = Path(__file__).with_name("data")


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CITYOS_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "cityos.platform.cli", "gis", *args], env=env, capture_output=True,
                          text=True)


def _residents(url: str) -> dict[str, tuple]:
    with psycopg.connect(url) as conn:
        return {r[0]: r[1:] for r in conn.execute(
            "select person_id, district_code, address_id, moved_in::text, moved_out::text from registry.residents")}


@pytest.fixture(scope="module")
def registry(private_database_url):
    done = _cli(private_database_url, "load-registry", str(DATA / "registry_extract_cp932.csv"))
    assert done.returncode == 0, done.stderr
    assert "4 residents loaded" in done.stdout
    return private_database_url


def test_the_cp932_extract_is_loaded_with_japanese_headers_and_sex_codes(registry):
    with psycopg.connect(registry) as conn:
        rows = conn.execute("select person_id, sex, birth_date::text from registry.residents order by 1").fetchall()
    assert rows == [("R0001", "M", "1950-04-01"), ("R0002", "F", "1952-07-15"), ("R0003", "F", "1988-01-20"),
                    ("R0004", "M", "2001-12-31")]


def test_a_days_changes_are_applied_with_exact_counts(registry):
    done = _cli(registry, "apply-registry-changes", str(DATA / "registry_changes_20261124.csv"))
    assert done.returncode == 0, done.stderr
    assert "2 inserted, 1 updated, 2 moved out, 0 unchanged, 0 refused (as of 2026-11-24)" in done.stdout
    residents = _residents(registry)
    assert residents["R0005"] == ("D1", "A4", "2026-11-24", None)  # moved in
    assert residents["R0006"] == ("D2", "A2", "2026-11-20", None)  # born
    assert residents["R0001"][3] == residents["R0002"][3] == "2026-11-24"  # moved out, died
    assert residents["R0004"][:2] == ("D1", "A5")  # moved within the city


def test_the_same_file_again_changes_nothing(registry):
    before = _residents(registry)
    done = _cli(registry, "apply-registry-changes", str(DATA / "registry_changes_20261124.csv"))
    assert done.returncode == 0 and "already applied" in done.stdout
    assert _residents(registry) == before


def test_the_same_changes_in_another_file_are_counted_unchanged(registry, tmp_path):
    copy = tmp_path / "again.csv"
    copy.write_bytes((DATA / "registry_changes_20261124.csv").read_bytes() + b"\r\n")
    done = _cli(registry, "apply-registry-changes", str(copy))
    assert "0 inserted, 0 updated, 0 moved out, 5 unchanged" in done.stdout


def test_a_file_with_bad_rows_is_refused_whole_with_the_lines(registry):
    before = _residents(registry)
    done = _cli(registry, "apply-registry-changes", str(DATA / "registry_changes_bad.csv"))
    assert done.returncode == 2
    assert "line 2: birth_date '1999-99-99' is not a date" in done.stderr
    assert "line 3: unknown change '引越'" in done.stderr
    assert _residents(registry) == before


def test_every_load_is_in_the_audit_log_and_the_update_table(registry):
    with psycopg.connect(registry) as conn:
        actions = [r[0] for r in conn.execute("select action from core.audit_log where resource = "
                                              "'registry/residents' order by id")]
        updates = conn.execute("select count(*) from registry.updates").fetchone()[0]
    assert actions[0] == "registry:load-extract" and actions.count("registry:apply-changes") == 2
    assert updates == 2
