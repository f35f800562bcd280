"""``cityos backup`` / ``cityos restore``: the platform database (pg_dump custom format), CKAN's database
and file storage where they are known, and the broker's dynamic-security file, in one folder with a
manifest of row counts that a restore is checked against.

pg_dump must be at least the server's version. The tools come from ``CITYOS_PG_BIN``, else the local
runtime's PostgreSQL 17 (its trixie root, run through chroot as deploy/runtime/postgres.py does), else the
PATH. Restoring TimescaleDB follows its documented procedure: ``timescaledb_pre_restore()`` before
pg_restore and ``timescaledb_post_restore()`` after, in a database that has the extension.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cityos.platform.db.connection import connect
from cityos.platform.settings import Settings

PG_BIN_IN_ROOT = "/usr/lib/postgresql/17/bin"
DUMP = "cityos.dump"
CKAN_DUMP = "ckan.dump"
MANIFEST = "manifest.json"
#: schemas of PostgreSQL and the extensions: never counted (their rows are the extensions' own)
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "_timescaledb_catalog", "_timescaledb_config",
                  "_timescaledb_internal", "_timescaledb_cache", "_timescaledb_functions", "_timescaledb_debug",
                  "timescaledb_information", "timescaledb_experimental", "topology", "tiger", "tiger_data")


class BackupError(RuntimeError):
    """A backup or restore that cannot be done, with the reason in words."""


@dataclass
class PgTools:
    """How to run pg_dump / pg_restore: an argv prefix (chroot into the runtime's root, or nothing)."""

    prefix: list[str]
    bin: str

    def argv(self, tool: str, *args: str) -> list[str]:
        return [*self.prefix, f"{self.bin}/{tool}", *args]


def pg_tools(settings: Settings) -> PgTools:
    """The pg_dump/pg_restore to use (see the module's docstring)."""
    if settings.pg_bin:
        return PgTools([], str(settings.pg_bin))
    root = Path(settings.home) / "runtime" / "pg-trixie"
    if (root / PG_BIN_IN_ROOT.lstrip("/") / "pg_dump").exists():
        uid, gid = _ids_in_root(root, "postgres")
        return PgTools([shutil.which("chroot") or "chroot", f"--userspec={uid}:{gid}", str(root)], PG_BIN_IN_ROOT)
    found = shutil.which("pg_dump")
    if not found:
        raise BackupError("no pg_dump: set CITYOS_PG_BIN to PostgreSQL's bin folder (at least the server's version)")
    return PgTools([], str(Path(found).parent))


def _ids_in_root(root: Path, user: str) -> tuple[int, int]:
    for line in (root / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise BackupError(f"the PostgreSQL root {root} has no {user} user")


#: the database's own tables: not PostgreSQL's, not an extension's (PostGIS's spatial_ref_sys, TimescaleDB's
#: catalog and chunks: a chunk's rows count under its hypertable)
OWN_TABLES = ("select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
              "where c.relkind in ('r', 'p') and n.nspname <> all(%s) and n.nspname not like 'pg\\_%%' "
              "and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e') order by 1, 2")


def row_counts(database_url: str) -> dict[str, int]:
    """Rows of every table and hypertable of the database's own (see OWN_TABLES)."""
    with connect(database_url) as conn:
        tables = conn.execute(OWN_TABLES, (list(SYSTEM_SCHEMAS),)).fetchall()
        return {f"{s}.{t}": conn.execute(sql.SQL("select count(*) from {}.{}").format(
            sql.Identifier(s), sql.Identifier(t))).fetchone()[0] for s, t in tables}


def _connection(url: str) -> tuple[str, dict[str, str]]:
    """``--dbname`` without the password, and the environment that carries it (never on a command line,
    where ``ps`` shows it)."""
    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **({"PGPASSWORD": password} if password else {})}
    return f"--dbname={make_conninfo(**params)}", env


def _dump(tools: PgTools, database_url: str, target: Path, what: str) -> None:
    dbname, env = _connection(database_url)
    with target.open("wb") as out:
        result = subprocess.run(tools.argv("pg_dump", "--format=custom", "--no-password", dbname),
                                stdout=out, stderr=subprocess.PIPE, env=env)
    if result.returncode != 0:
        target.unlink(missing_ok=True)
        raise BackupError(f"pg_dump of {what} failed: {result.stderr.decode(errors='replace').strip()[-2000:]}")


def _broker_file(settings: Settings) -> Path:
    from cityos.ingest.broker_auth import CONFIG_NAME

    return Path(settings.broker_auth_dir or Path(settings.home) / "broker") / CONFIG_NAME


def backup(settings: Settings, destination: Path) -> Path:
    """Write a backup folder under ``destination``; returns it. Nothing is half-written: a failed backup
    leaves no folder."""
    if not settings.database_url:
        raise BackupError("CITYOS_DATABASE_URL is not set")
    tools = pg_tools(settings)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    final = Path(destination) / f"cityos-backup-{stamp}"
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True, mode=0o700)
    try:
        manifest: dict[str, object] = {"created": stamp, "row_counts": row_counts(settings.database_url)}
        _dump(tools, settings.database_url, partial / DUMP, "the platform database")
        manifest["ckan_database"] = bool(settings.ckan_database_url)
        if settings.ckan_database_url:
            _dump(tools, settings.ckan_database_url, partial / CKAN_DUMP, "CKAN's database")
        storage = Path(settings.home) / "ckan" / "storage"
        manifest["ckan_storage"] = storage.is_dir()
        if storage.is_dir():
            shutil.copytree(storage, partial / "ckan-storage")
        broker = _broker_file(settings)
        manifest["broker_accounts"] = broker.is_file()
        if broker.is_file():
            shutil.copy2(broker, partial / broker.name)
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final


def _on_database(url: str, database: str) -> str:
    return url.rpartition("/")[0] + f"/{database}"


def restore(settings: Settings, source: Path, database_url: str) -> dict[str, tuple[int, int]]:
    """Restore the platform database of backup folder ``source`` into the **empty** database
    ``database_url`` (created beforehand with the timescaledb and postgis extensions, owned by the
    connecting role). TimescaleDB's catalog and restore mode need a superuser: pg_restore runs as
    CITYOS_ADMIN_DATABASE_URL's role (any database of that server) and gives every object its owner
    from the dump, so the roles of the dump must exist on the target server. Returns the tables whose row
    counts differ from the manifest (empty = the same)."""
    source = Path(source)
    if not (source / MANIFEST).is_file() or not (source / DUMP).is_file():
        raise BackupError(f"{source} is not a cityos backup folder (no {MANIFEST} or {DUMP})")
    if not settings.admin_database_url:
        raise BackupError("restoring TimescaleDB needs a superuser: set CITYOS_ADMIN_DATABASE_URL")
    expected = json.loads((source / MANIFEST).read_text())["row_counts"]
    with connect(database_url, autocommit=True) as conn:
        database = conn.info.dbname
        if conn.execute(OWN_TABLES, (list(SYSTEM_SCHEMAS),)).fetchone():
            raise BackupError("the target database is not empty: restore only into a new database")
        if not conn.execute("select 1 from pg_extension where extname = 'timescaledb'").fetchone():
            raise BackupError("the target database has no timescaledb extension: `create extension timescaledb` first")
    admin = _on_database(settings.admin_database_url, database)
    with connect(admin, autocommit=True) as conn:
        conn.execute("select timescaledb_pre_restore()")
    try:
        tools = pg_tools(settings)
        dbname, env = _connection(admin)
        with (source / DUMP).open("rb") as dump:
            result = subprocess.run(tools.argv("pg_restore", "--no-password", dbname), stdin=dump,
                                    capture_output=True, env=env)
    finally:
        with connect(admin, autocommit=True) as conn:
            conn.execute("select timescaledb_post_restore()")
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed: {result.stderr.decode(errors='replace').strip()[-2000:]}")
    actual = row_counts(database_url)
    return {table: (count, actual.get(table, -1)) for table, count in expected.items()
            if actual.get(table, -1) != count}


def restore_broker_file(settings: Settings, source: Path) -> Path | None:
    """Put the backup's dynamic-security file back (the broker must be stopped); its path, or None."""
    saved = Path(source) / _broker_file(settings).name
    if not saved.is_file():
        return None
    target = _broker_file(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(saved, target)
    return target
