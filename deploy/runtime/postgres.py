"""PostgreSQL 17 + PostGIS 3 + TimescaleDB from a Debian trixie root, run on 127.0.0.1.

Debian bookworm has no TimescaleDB, and the host's apt sources and libc must not change, so the
server runs from a trixie root built with mmdebstrap inside the state folder (about 740 MB,
rebuilt by ``cityos up`` when missing). When ``CITYOS_DATABASE_URL`` is set in the environment
the runtime provisions nothing and only applies migrations to that server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

from cityos.deploy.runtime.component import ComponentStatus
from cityos.deploy.runtime.process import port_open, wait_until
from cityos.deploy.runtime.state import Secrets, StateDir
from cityos.deploy.runtime.system import ensure_commands, which
from cityos.platform.settings import Settings, redact_url

PG_BIN = "/usr/lib/postgresql/17/bin"
PACKAGES = "postgresql-17,postgresql-17-postgis-3,postgresql-17-timescaledb"
DATA_IN_ROOT = "/var/lib/cityos/pgdata"
LOG_IN_ROOT = "/var/log/cityos/postgres.log"
DATABASE = "cityos"
OWNER_ROLE = "cityos"

# Blocks service start-up inside the root and stops the packages from creating a cluster on 5432.
SETUP_HOOK = (
    'mkdir -p "$1/etc/postgresql-common/createcluster.d" "$1/usr/sbin" && '
    'echo "create_main_cluster = false" > "$1/etc/postgresql-common/createcluster.d/cityos.conf" && '
    'printf "#!/bin/sh\\nexit 101\\n" > "$1/usr/sbin/policy-rc.d" && chmod 755 "$1/usr/sbin/policy-rc.d"'
)


def server_conf(port: int) -> str:
    """The settings drop-in for the local server (tuned for a 2-core, 24 GiB machine)."""
    return f"""# written by cityos up
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '/run/postgresql'
max_connections = 200
# TimescaleDB: a query over a year of daily chunks locks each chunk and its indexes
max_locks_per_transaction = 512
shared_buffers = 1GB
work_mem = 32MB
maintenance_work_mem = 512MB
max_wal_size = 4GB
checkpoint_timeout = 15min
dynamic_shared_memory_type = sysv
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
timescaledb.max_background_workers = 4
max_worker_processes = 16
password_encryption = 'scram-sha-256'
log_line_prefix = '%m [%p] %q%u@%d '
log_min_duration_statement = 2000
"""


HBA = """# written by cityos up: password (scram) auth over loopback only
local   all   postgres                 peer
host    all   all        127.0.0.1/32  scram-sha-256
"""


class Postgres:
    """The platform database server."""

    name = "postgres"

    def __init__(self, settings: Settings, state: StateDir, secrets: Secrets):
        self.settings = settings
        self.state = state
        self.secrets = secrets
        self.root = state.runtime / "pg-trixie"
        self.port = settings.pg_port

    # -- addressing ---------------------------------------------------------------------------
    @property
    def external(self) -> bool:
        return bool(os.environ.get("CITYOS_DATABASE_URL"))

    def admin_url(self, database: str = "postgres") -> str:
        """Superuser URL of the local server (for provisioning and tests)."""
        pw = quote(self.secrets.get("PG_SUPERUSER_PASSWORD"), safe="")
        return f"postgresql://postgres:{pw}@127.0.0.1:{self.port}/{database}"

    def owner_url(self) -> str:
        """URL of the platform database as its owner role (migrations, services)."""
        pw = quote(self.secrets.get("PG_OWNER_PASSWORD"), safe="")
        return f"postgresql://{OWNER_ROLE}:{pw}@127.0.0.1:{self.port}/{DATABASE}"

    def database_url(self) -> str:
        return os.environ.get("CITYOS_DATABASE_URL") or self.owner_url()

    # -- root -----------------------------------------------------------------------------------
    def _in_root(self, path: str) -> Path:
        """Host path of ``path`` inside the root (never through the root's absolute symlinks)."""
        host = self.root / path.lstrip("/")
        if not host.resolve().is_relative_to(self.root.resolve()):
            raise RuntimeError(f"{path} leaves the trixie root (absolute symlink); refusing to touch the host")
        return host

    def root_ready(self) -> bool:
        return self._in_root(f"{PG_BIN}/postgres").exists() and self._in_root("etc/passwd").exists()

    def build_root(self) -> None:
        """Build the trixie root once (mmdebstrap, about 30-50 s); atomic via a partial folder."""
        if self.root_ready():
            return
        ensure_commands("mmdebstrap")
        partial = self.root.with_name(self.root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        mirror = self.settings.debian_mirror.rstrip("/")
        security = mirror.rsplit("/", 1)[0] + "/debian-security"
        cmd = [
            "mmdebstrap", "--mode=root", "--variant=minbase", f"--include={PACKAGES}",
            f"--setup-hook={SETUP_HOOK}", "trixie", str(partial),
            f"deb {mirror} trixie main", f"deb {mirror} trixie-updates main",
            f"deb {security} trixie-security main",
        ]
        log = self.state.logs / "mmdebstrap.log"
        with open(log, "wb") as fh:
            result = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"building the PostgreSQL trixie root failed; see {log}")
        partial.rename(self.root)

    def _postgres_ids(self) -> tuple[int, int]:
        """uid and gid of ``postgres`` inside the root (they may mean another user on the host)."""
        for line in self._in_root("etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == "postgres":
                return int(fields[2]), int(fields[3])
        raise RuntimeError("the trixie root has no postgres user")

    def _chroot(self, *argv: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess:
        uid, gid = self._postgres_ids()
        cmd = [which("chroot") or "chroot", f"--userspec={uid}:{gid}", str(self.root), *argv]
        return subprocess.run(cmd, check=check, capture_output=capture, text=True,
                              env={"PATH": f"{PG_BIN}:/usr/bin:/bin", "LANG": "C.UTF-8"})

    # -- cluster --------------------------------------------------------------------------------
    def _datadir(self) -> Path:
        return self._in_root(DATA_IN_ROOT)

    def initdb(self) -> None:
        """Create the cluster once, with a generated superuser password and loopback-only access."""
        data = self._datadir()
        if (data / "PG_VERSION").exists():
            return
        uid, gid = self._postgres_ids()
        for path in (data, self._in_root("/run/postgresql"), self._in_root("/var/log/cityos")):
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, uid, gid)
        data.chmod(0o700)
        pwfile = self._in_root("/var/lib/cityos/.pw")
        pwfile.write_text(self.secrets.get("PG_SUPERUSER_PASSWORD") + "\n")
        os.chown(pwfile, uid, gid)
        pwfile.chmod(0o600)
        try:
            self._chroot(f"{PG_BIN}/initdb", "-D", DATA_IN_ROOT, "-U", "postgres", "-E", "UTF8",
                         "--locale=C.UTF-8", "--auth-local=peer", "--auth-host=scram-sha-256",
                         "--pwfile=/var/lib/cityos/.pw")
        finally:
            pwfile.unlink(missing_ok=True)
        (data / "conf.d").mkdir(exist_ok=True)
        os.chown(data / "conf.d", uid, gid)
        with open(data / "postgresql.conf", "a") as fh:
            fh.write("\ninclude_dir = 'conf.d'\n")
        (data / "pg_hba.conf").write_text(HBA)

    def write_conf(self) -> None:
        conf = self._datadir() / "conf.d" / "cityos.conf"
        text = server_conf(self.port)
        if not conf.exists() or conf.read_text() != text:
            conf.write_text(text)
            uid, gid = self._postgres_ids()
            os.chown(conf, uid, gid)

    def running_pid(self) -> int | None:
        """The postmaster pid if the server in our data folder runs."""
        pidfile = self._datadir() / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split()[0])
            os.kill(pid, 0)
            return pid
        except (FileNotFoundError, ValueError, IndexError, ProcessLookupError):
            return None

    def start(self) -> None:
        """Start the server if it is not running and wait until it accepts connections."""
        if self.running_pid() is None:
            uid, gid = self._postgres_ids()
            for path in (self._in_root("/run/postgresql"), self._in_root("/var/log/cityos")):
                path.mkdir(parents=True, exist_ok=True)
                os.chown(path, uid, gid)
            self._chroot(f"{PG_BIN}/pg_ctl", "-D", DATA_IN_ROOT, "-l", LOG_IN_ROOT, "-w", "-t", "60",
                         "-o", "-c config_file=" + DATA_IN_ROOT + "/postgresql.conf", "start")
        wait_until(lambda: port_open("127.0.0.1", self.port), 60, "PostgreSQL")

    def stop(self, mode: str = "fast") -> bool:
        """Stop the server (keeps the data); True if it was running."""
        if self.running_pid() is None:
            return False
        self._chroot(f"{PG_BIN}/pg_ctl", "-D", DATA_IN_ROOT, "-m", mode, "-w", "-t", "60", "stop")
        return True

    def provision_database(self) -> None:
        """Create the owner role, the platform database and its extensions (idempotent)."""

        from psycopg import sql

        from cityos.platform.db.connection import connect

        owner_pw = self.secrets.get("PG_OWNER_PASSWORD")
        with connect(self.admin_url(), autocommit=True) as conn:
            if not conn.execute("select 1 from pg_roles where rolname = %s", (OWNER_ROLE,)).fetchone():
                conn.execute(sql.SQL("create role {} login createrole password {}").format(
                    sql.Identifier(OWNER_ROLE), sql.Literal(owner_pw)))
            if not conn.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone():
                conn.execute(f"create database {DATABASE} owner {OWNER_ROLE}")
        with connect(self.admin_url(DATABASE), autocommit=True) as conn:
            conn.execute("create extension if not exists timescaledb")
            conn.execute("create extension if not exists postgis")
            conn.execute(f"grant create on database {DATABASE} to {OWNER_ROLE}")

    # -- Component --------------------------------------------------------------------------------
    def up(self) -> None:
        if self.external:
            return
        self.build_root()
        self.initdb()
        self.write_conf()
        self.start()
        self.provision_database()

    def down(self) -> bool:
        if self.external:
            return False
        return self.stop()

    def status(self) -> ComponentStatus:
        from cityos.platform.db.features import describe_server

        url = self.database_url()
        mode = "external" if self.external else "local"
        running = True if self.external else self.running_pid() is not None
        st = ComponentStatus(self.name, mode, running, False, url=redact_url(url))
        if not running:
            return st
        started = time.monotonic()
        try:
            info = describe_server(url)
        except Exception as exc:
            st.detail["error"] = str(exc).strip().splitlines()[0]
            return st
        st.healthy = True
        st.version = info.pop("server_version", "")
        st.detail.update(info)
        st.detail["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
        return st

    def log_path(self) -> Path | None:
        return None if self.external else self._in_root(LOG_IN_ROOT)
