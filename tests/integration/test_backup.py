"""``cityos backup`` and ``cityos restore``: a restore into an empty database gives the same row counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from cityos.deploy.backup import BackupError, restore, row_counts
from helpers import missing

SOURCE = os.environ.get("CITYOS_TEST_DATABASE", "cityos_test") + "_backup_source"
TARGET = os.environ.get("CITYOS_TEST_DATABASE", "cityos_test") + "_backup_target"


def _empty_database(settings, name: str) -> str:
    """A new database with the extensions only, owned by the platform's role; its owner URL."""
    owner = settings.database_url.split("://", 1)[1].split(":", 1)[0]
    with psycopg.connect(settings.admin_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(name), sql.Identifier(owner)))
    with psycopg.connect(settings.admin_database_url.rpartition("/")[0] + f"/{name}", autocommit=True) as conn:
        conn.execute("create extension timescaledb")
        conn.execute("create extension postgis")
    return settings.database_url.rpartition("/")[0] + f"/{name}"


@pytest.fixture(scope="module")
def source(settings) -> str:
    """A migrated database with devices, readings in several chunks and a dead letter."""
    if not settings.admin_database_url:
        missing("no CITYOS_ADMIN_DATABASE_URL: run the suite with `./cityos test`")
    from cityos.ingest.devices import add_device
    from cityos.platform.db.migrate import migrate

    url = _empty_database(settings, SOURCE)
    migrate(url)
    now = datetime.now(UTC)
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(3):
            add_device(conn, f"hems-bk{i}", "hems")
        with conn.cursor().copy("copy telemetry.energy_readings (time, device_id, metric, value) from stdin") as copy:
            for n in range(2000):  # 2000 readings over 40 days: several chunks
                copy.write_row((now - timedelta(minutes=29 * n), f"hems-bk{n % 3}", "power_w", float(n)))
        conn.execute("insert into core.dead_letters (topic, device_id, reason, payload) "
                     "values ('cityos/v1/hems/x/readings', 'x', 'unknown_device', '{}')")
    return url


def _cli(settings, *argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cityos.platform.cli", *argv], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_a_restore_into_an_empty_database_gives_the_same_row_counts(settings, source, tmp_path):
    broker_dir = tmp_path / "broker"
    broker_dir.mkdir()
    (broker_dir / "dynamic-security.json").write_text('{"clients": []}')
    env = {"CITYOS_DATABASE_URL": source, "CITYOS_BROKER_AUTH_DIR": str(broker_dir)}
    done = _cli(settings, "backup", "--to", str(tmp_path / "backups"), env=env)
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip())
    assert {"cityos.dump", "manifest.json", "dynamic-security.json"} <= {p.name for p in folder.iterdir()}
    target = _empty_database(settings, TARGET)
    done = _cli(settings, "restore", str(folder), "--database-url", target)
    assert done.returncode == 0, done.stderr
    counts = row_counts(target)
    assert counts == row_counts(source) == json.loads((folder / "manifest.json").read_text())["row_counts"]
    assert counts["telemetry.energy_readings"] == 2000 and counts["core.devices"] == 3
    with psycopg.connect(target) as conn:  # objects keep their owner (the platform's role), hypertables work
        owners = {r[0] for r in conn.execute("select tableowner from pg_tables where schemaname = 'telemetry'")}
        assert owners == {source.split("://", 1)[1].split(":", 1)[0]}
        assert conn.execute("select count(*) from timescaledb_information.hypertables").fetchone()[0] > 0
        conn.execute("insert into telemetry.energy_readings (time, device_id, metric, value) "
                     "values (now(), 'hems-bk0', 'power_w', 1)")


def test_restore_refuses_a_database_that_is_not_empty(settings, source, tmp_path):
    from cityos.deploy.backup import backup

    folder = backup(settings.model_copy(update={"database_url": source, "broker_auth_dir": tmp_path}), tmp_path)
    with pytest.raises(BackupError, match="not empty"):
        restore(settings, folder, source)
    assert row_counts(source)["telemetry.energy_readings"] == 2000


def test_a_failed_backup_leaves_no_folder(settings, tmp_path):
    from cityos.deploy.backup import backup

    wrong = settings.database_url.rpartition("/")[0] + "/no_such_database_here"
    with pytest.raises((BackupError, psycopg.OperationalError)):
        backup(settings.model_copy(update={"database_url": wrong}), tmp_path)
    assert list(tmp_path.iterdir()) == []
