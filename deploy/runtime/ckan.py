"""CKAN, the city's open-data portal, run locally: its own virtualenv, Redis and database.

The real ``ckan`` package from PyPI (2.12) in ``.cityos/runtime/ckan-venv`` with our plugin
``cityos_pgsearch`` (``opendata/ckanext-cityos``), which keeps CKAN's search index in its own
PostgreSQL database instead of Solr. Redis comes from Debian, started by hand on loopback. CKAN's
database and role live on the platform's PostgreSQL server. A sysadmin user and its API token are
created once; the token is kept in ``.cityos/ckan/api-token`` (mode 600) and handed to the
publisher as ``CITYOS_CKAN_URL`` / ``CITYOS_CKAN_TOKEN``. With ``CITYOS_CKAN_URL`` in the
environment an existing portal is used and nothing is provisioned.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from cityos.deploy.runtime.component import ComponentStatus
from cityos.deploy.runtime.process import port_open, read_pid, spawn, stop_pid, wait_until
from cityos.deploy.runtime.state import Secrets, StateDir, write_private
from cityos.deploy.runtime.system import ProvisioningError, ensure_packages, which
from cityos.platform.settings import Settings

CKAN_VERSION = "2.12.0"
PLUGIN_DIR = Path(__file__).resolve().parents[2] / "opendata" / "ckanext-cityos"
LICENSES = Path(__file__).resolve().parents[2] / "opendata" / "licenses.json"
#: Debian packages CKAN's install and run need (psycopg2 builds from source; python-magic; Redis).
PACKAGES = ("gcc", "libpq-dev", "python3-dev", "libmagic1", "redis-server")
PUBLISHER = "cityos-publisher"
WSGI = """# written by cityos up: CKAN's WSGI application for gunicorn
import os

from ckan.cli import CKANConfigLoader
from ckan.config.middleware import make_app

application = make_app(CKANConfigLoader(os.environ["CKAN_INI"]).get_config())
"""


def set_options(ini: str, options: dict[str, str]) -> str:
    """``ini`` (CKAN's config) with each option set in ``[app:main]`` (replaced where present)."""
    for key, value in options.items():
        pattern = re.compile(rf"^#?\s*{re.escape(key)}\s*=.*$", re.MULTILINE)
        line = f"{key} = {value}"
        if pattern.search(ini):
            ini = pattern.sub(lambda _, text=line: text, ini, count=1)
        else:
            ini = ini.replace("[app:main]\n", f"[app:main]\n{line}\n", 1)
    return ini


class Ckan:
    """The local CKAN portal on ``127.0.0.1:CITYOS_CKAN_PORT``."""

    name = "ckan"

    def __init__(self, settings: Settings, state: StateDir, secrets: Secrets, admin_url: str):
        self.settings = settings
        self.state = state
        self.secrets = secrets
        self.admin_url = admin_url  # superuser URL of the platform's server ("" when external)
        self.folder = state.home / "ckan"
        self.venv = state.runtime / "ckan-venv"
        self.ini = self.folder / "ckan.ini"
        self.token_file = self.folder / "api-token"
        self.pidfile = state.pidfile("ckan")
        self.redis_pidfile = state.pidfile("redis")
        self.logfile = state.logs / "ckan.log"
        self.redis_log = state.logs / "redis.log"

    @property
    def external(self) -> bool:
        return bool(os.environ.get("CITYOS_CKAN_URL"))

    @property
    def url(self) -> str:
        return os.environ["CITYOS_CKAN_URL"] if self.external else f"http://127.0.0.1:{self.settings.ckan_port}"

    def token(self) -> str:
        """The publishing user's API token ("" before the first ``up``)."""
        if self.external:
            return os.environ.get("CITYOS_CKAN_TOKEN", "")
        return self.token_file.read_text().strip() if self.token_file.exists() else ""

    def connection_env(self) -> dict[str, str]:
        """``CITYOS_CKAN_URL`` and ``CITYOS_CKAN_TOKEN`` for the platform's services."""
        token = self.token()
        return {"CITYOS_CKAN_URL": self.url, "CITYOS_CKAN_TOKEN": token} if token else {}

    # -- provisioning ---------------------------------------------------------------------------

    def _bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def _ckan(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([self._bin("ckan"), "-c", str(self.ini), *args], capture_output=True, text=True,
                              check=check, cwd=self.folder)

    def install(self) -> None:
        """The virtualenv with CKAN, gunicorn and our plugin (about 30 s, once)."""
        marker = self.venv / f".cityos-ckan-{CKAN_VERSION}"
        if marker.exists():
            return
        ensure_packages(*PACKAGES)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(self.venv)], check=True)
        pip = [self._bin("pip"), "install", "--quiet", "--disable-pip-version-check"]
        steps = ([f"ckan[requirements]=={CKAN_VERSION}", "ckanapi", "gunicorn"], ["--no-deps", "-e", str(PLUGIN_DIR)])
        for args in steps:
            done = subprocess.run([*pip, *args], capture_output=True, text=True, check=False)
            if done.returncode:
                raise ProvisioningError(f"installing CKAN failed ({' '.join(args)}):\n{done.stderr[-2000:]}")
        marker.touch()

    def provision_database(self) -> str:
        """CKAN's role and database on the platform's server; returns CKAN's database URL."""

        from psycopg import sql

        from cityos.platform.db.connection import connect

        if not self.admin_url:
            raise ProvisioningError("CKAN needs a database: set CITYOS_ADMIN_DATABASE_URL (a superuser URL of the "
                                    "server) or CITYOS_CKAN_URL and CITYOS_CKAN_TOKEN (an existing portal)")
        password = self.secrets.get("CKAN_DB_PASSWORD")
        with connect(self.admin_url, autocommit=True) as conn:
            if not conn.execute("select 1 from pg_roles where rolname = 'ckan'").fetchone():
                conn.execute(sql.SQL("create role ckan login password {}").format(sql.Literal(password)))
            if not conn.execute("select 1 from pg_database where datname = 'ckan'").fetchone():
                conn.execute("create database ckan owner ckan encoding 'UTF8' template template0")
        server = self.admin_url.split("@", 1)[1].rsplit("/", 1)[0]
        return f"postgresql://ckan:{password}@{server}/ckan"

    def write_config(self, database_url: str) -> None:
        """ckan.ini (mode 600: it holds the database password and CKAN's secret key) and the WSGI file."""
        (self.folder / "storage").mkdir(parents=True, exist_ok=True)
        if not self.ini.exists():
            subprocess.run([self._bin("ckan"), "generate", "config", str(self.ini)], check=True, capture_output=True)
        options = {
            "sqlalchemy.url": database_url,
            "ckan.site_url": f"http://127.0.0.1:{self.settings.ckan_port}",
            "ckan.site_title": "会津若松市オープンデータ (cityos)",
            "solr_url": "http://127.0.0.1:9/solr-replaced-by-cityos-pgsearch",
            "ckan.redis.url": f"redis://127.0.0.1:{self.settings.redis_port}/0",
            "ckan.plugins": "cityos_pgsearch",
            "ckan.storage_path": str(self.folder / "storage"),
            "ckan.max_resource_size": "100",
            "licenses_group_url": LICENSES.as_uri(),
            "ckan.locale_default": "ja",
            "ckan.locales_offered": "ja en",
            # user names and details only for signed-in users (CKAN's default lists them to anyone)
            "ckan.auth.public_user_details": "false",
        }
        text = set_options(self.ini.read_text(), options)
        write_private(self.ini, text)
        (self.folder / "wsgi.py").write_text(WSGI)

    def start_redis(self) -> None:
        if read_pid(self.redis_pidfile) is not None:
            return
        port = self.settings.redis_port
        if port_open("127.0.0.1", port):
            raise ProvisioningError(f"port {port} is taken by another program; set CITYOS_REDIS_PORT")
        data = self.state.home / "redis"
        data.mkdir(exist_ok=True)
        argv = [which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                "--protected-mode", "yes", "--dir", str(data), "--save", "", "--appendonly", "no",
                "--daemonize", "no"]
        spawn(argv, self.redis_pidfile, self.redis_log)
        wait_until(lambda: port_open("127.0.0.1", port), 15, "Redis")

    def initialise(self) -> None:
        """CKAN's tables (once) and the publishing sysadmin with its API token (once)."""
        marker = self.folder / ".db-initialised"
        if not marker.exists():
            self._ckan("db", "init")
            marker.touch()
        if self.token_file.exists():
            return
        self._ckan("user", "add", PUBLISHER, "email=opendata@cityos.invalid",
                   f"password={self.secrets.get('CKAN_PUBLISHER_PASSWORD')}", check=False)
        self._ckan("sysadmin", "add", PUBLISHER)
        out = self._ckan("user", "token", "add", PUBLISHER, "cityos-publisher").stdout
        token = out.strip().splitlines()[-1].strip()
        if not token or " " in token:
            raise ProvisioningError(f"could not read CKAN's API token from: {out[-300:]}")
        write_private(self.token_file, token + "\n")

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/3/action/status_show", timeout=2).json().get("success") is True
        except (httpx.HTTPError, ValueError):
            return False

    def start(self) -> None:
        if read_pid(self.pidfile) is None:
            if port_open("127.0.0.1", self.settings.ckan_port):
                raise ProvisioningError(f"port {self.settings.ckan_port} is taken by another program; "
                                        "set CITYOS_CKAN_PORT")
            argv = [self._bin("gunicorn"), "--chdir", str(self.folder), "--bind",
                    f"127.0.0.1:{self.settings.ckan_port}", "--workers", "2", "--timeout", "120", "wsgi:application"]
            spawn(argv, self.pidfile, self.logfile, env={**os.environ, "CKAN_INI": str(self.ini)}, cwd=self.folder)
        try:
            wait_until(self._healthy, 60, "CKAN", interval=0.3)
        except TimeoutError as exc:
            tail = self.logfile.read_text()[-1500:] if self.logfile.exists() else ""
            raise ProvisioningError(f"CKAN did not start: {tail}") from exc

    def up(self) -> None:
        if self.external:
            return
        if read_pid(self.pidfile) is not None and self.token_file.exists() and self._healthy():
            return
        self.install()
        self.write_config(self.provision_database())
        self.start_redis()
        self.initialise()
        self.start()

    def down(self) -> bool:
        if self.external:
            return False
        stopped = stop_pid(self.pidfile)
        return stop_pid(self.redis_pidfile) or stopped

    def status(self) -> ComponentStatus:
        running = True if self.external else read_pid(self.pidfile) is not None
        st = ComponentStatus(self.name, "external" if self.external else ("local" if running else "stopped"),
                             running, False, url=self.url)
        if running:
            try:
                result = httpx.get(f"{self.url}/api/3/action/status_show", timeout=5).json()["result"]
                st.healthy, st.version = True, result.get("ckan_version", "")
                st.detail["plugins"] = ",".join(result.get("extensions", []))
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                st.detail["error"] = str(exc)
        return st

    def log_path(self) -> Path | None:
        return None if self.external else self.logfile
