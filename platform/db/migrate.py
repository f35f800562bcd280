"""Versioned, forward-only schema migrations, recorded in ``cityos_meta.schema_migrations``.

Migrations live in ``platform/db/migrations`` as ``NNNN_name.sql`` or ``NNNN_name.py`` (a module
with ``apply(conn, features)``, for steps that depend on the server's TimescaleDB edition).
Each runs in its own transaction under an advisory lock, so concurrent or repeated runs are safe.
An applied migration whose file changed is an error: fix forward with a new migration.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import psycopg

from cityos.platform.db.connection import dedicated
from cityos.platform.db.features import ServerFeatures, detect
from cityos.platform.db.scalar import scalar

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
LOCK_ID = 0x63697479  # "city"


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    path: Path

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    def apply(self, conn: psycopg.Connection, features: ServerFeatures) -> None:
        if self.path.suffix == ".sql":
            conn.execute(self.path.read_text())
            return
        spec = importlib.util.spec_from_file_location(f"cityos_migration_{self.version}", self.path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.apply(conn, features)


#: Steps run after the migrations, under the same lock, by name (the platform imports nothing of the others at
#: import time): the tables of GIS layers declared without a migration (:mod:`cityos.gis.schema`).
AFTER_MIGRATIONS = ("cityos.gis.schema:ensure_tables",)


def _after_migrations(conn: psycopg.Connection) -> None:
    for spec in AFTER_MIGRATIONS:
        module, _, function = spec.partition(":")
        try:
            step = getattr(importlib.import_module(module), function)
        except ModuleNotFoundError as exc:  # an install without that component; any other error is raised
            if exc.name and module.startswith(exc.name):
                continue
            raise
        step(conn)


class MigrationError(RuntimeError):
    """The database's migration history does not match the migration files."""


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in version order; duplicate versions are an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix not in (".sql", ".py") or not path.name[:4].isdigit():
            continue
        version = int(path.name[:4])
        if version in found:
            raise MigrationError(f"two migrations with version {version}: {found[version].path.name}, {path.name}")
        found[version] = Migration(version, path.stem[5:], path)
    return [found[v] for v in sorted(found)]


def applied(conn: psycopg.Connection) -> dict[int, str]:
    """Applied versions and their checksums."""
    if not scalar(conn.execute("select to_regclass('cityos_meta.schema_migrations')")):
        return {}
    return dict(conn.execute("select version, checksum from cityos_meta.schema_migrations").fetchall())


def migrate(url: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply the pending migrations to the database at ``url``; return those applied."""
    done: list[Migration] = []
    with dedicated(url, autocommit=True) as conn:  # holds a session-level advisory lock
        conn.execute("select pg_advisory_lock(%s)", (LOCK_ID,))
        try:
            conn.execute("create schema if not exists cityos_meta")
            conn.execute(
                "create table if not exists cityos_meta.schema_migrations ("
                " version integer primary key, name text not null, checksum text not null,"
                " applied_at timestamptz not null default now())"
            )
            features = detect(conn)
            history = applied(conn)
            for migration in discover(directory):
                if migration.version in history:
                    if history[migration.version] != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.path.name} changed after it was applied; "
                            "migrations are forward-only: add a new one instead"
                        )
                    continue
                with conn.transaction():
                    migration.apply(conn, features)
                    conn.execute(
                        "insert into cityos_meta.schema_migrations (version, name, checksum) values (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                log.info("applied migration %04d %s", migration.version, migration.name)
                done.append(migration)
            _after_migrations(conn)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (LOCK_ID,))
    return done
