"""The built wheel is the platform: installed outside the repository, it migrates a database, builds the
open-data datasets, serves the apps (with the MapLibre bundle) and runs the API and an ingest worker.

The wheel is installed with ``--no-deps`` into a fresh virtualenv (no system site packages) made from the
same Python; its third-party dependencies come from the project's virtualenv through a ``.pth`` line naming
that site-packages folder. A ``.pth`` line only appends a folder: the ``.pth`` files inside it (the editable
install's import hook that maps ``cityos`` to this checkout) are not run, so every ``cityos`` module and
data file comes from the wheel. Each command runs from a temporary folder outside the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql
from publisher import publish_once

from helpers import free_port, missing, wait_for

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory) -> dict:
    """Build the wheel from a clean copy of the repository's files (as a fresh checkout or the image's build
    context: no egg-info, build folder or apps bundle left by a development install, which setuptools would
    otherwise pick up) and install it into a fresh virtualenv."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(root / "dist")], check=True, cwd=root, capture_output=True)
    (wheel,) = (root / "dist").glob("cityos-*.whl")
    venv = root / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "zz_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    work = root / "cwd"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}:/usr/bin:/bin", CITYOS_LOG_JSON="true", CITYOS_HOME=str(root / "home"))
    return {"python": str(python), "bin": venv / "bin", "cwd": work, "env": env, "purelib": purelib}


def _run(wheel_env: dict, *argv: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), cwd=wheel_env["cwd"], env={**wheel_env["env"], **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def wheel_database(settings, wheel_env) -> str:
    """An empty database of this module's own (extensions only), migrated by the wheel's ``cityos db migrate``."""
    if not settings.admin_database_url:
        missing("no CITYOS_ADMIN_DATABASE_URL: run the suite with `./cityos test`")
    name = (os.environ.get("CITYOS_TEST_DATABASE", "cityos_test") + "_wheel")[:63]
    owner = settings.database_url.split("://", 1)[1].split(":", 1)[0]
    with psycopg.connect(settings.admin_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(name), sql.Identifier(owner)))
    admin = settings.admin_database_url.rpartition("/")[0] + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("create extension if not exists timescaledb")
        conn.execute("create extension if not exists postgis")
    url = settings.database_url.rpartition("/")[0] + f"/{name}"
    done = _run(wheel_env, "cityos", "db", "migrate", env={"CITYOS_DATABASE_URL": url})
    assert done.returncode == 0, done.stdout + done.stderr
    return url


def test_the_wheel_is_imported_from_the_venv_not_the_repository(wheel_env):
    probe = ("import json, sys, cityos.platform.cli, cityos.platform.api.apps as a, cityos.opendata.definitions as d, "
             "cityos.gis.democity as g; print(json.dumps([sys.path, cityos.platform.cli.__file__, str(a.APPS_DIR), "
             "str(d.DATASETS_DIR), str(g.DATA)]))")
    done = _run(wheel_env, wheel_env["python"], "-c", probe)
    assert done.returncode == 0, done.stderr
    path, cli, apps, datasets, city = json.loads(done.stdout)
    assert str(REPO) not in path  # ("" is the temporary working folder)
    for located in (cli, apps, datasets, city):
        assert located.startswith(wheel_env["purelib"]), located


def test_the_wheel_carries_every_run_time_file(wheel_env):
    cityos = Path(wheel_env["purelib"]) / "cityos"
    for name in ("opendata/datasets/portal.toml", "opendata/datasets/bus-stops.toml", "opendata/licenses.json",
                 "platform/db/migrations/0001_core.sql", "platform/db/migrations/0002_rollups_and_retention.py",
                 "apps/index.html", "apps/hydrants/sw.js", "apps/vendor/maplibre-gl/maplibre-gl.mjs",
                 "apps/vendor/maplibre-gl/maplibre-gl-worker.mjs", "apps/vendor/swagger-ui/swagger-ui-bundle.js",
                 "apps/vendor/redoc/redoc.standalone.js", "gis/data/aizuwakamatsu/hydrants_2014.csv",
                 "gis/data/aizuwakamatsu/boundary_n03_2021.geojson", "opendata/ckanext-cityos/pyproject.toml",
                 "opendata/ckanext-cityos/ckanext/cityos_pgsearch/plugin.py"):
        assert (cityos / name).is_file(), name
    assert not list(cityos.rglob("node_modules")) and not list(cityos.rglob("package-lock.json"))
    sources = {p.name for p in (REPO / "platform/db/migrations").iterdir() if p.suffix in (".sql", ".py")}
    assert {p.name for p in (cityos / "platform/db/migrations").iterdir() if p.suffix in (".sql", ".py")} == sources


def test_the_wheel_migrates_a_database_and_publishes_a_dry_run(wheel_env, wheel_database, settings):
    with psycopg.connect(wheel_database) as conn:
        applied = conn.execute("select count(*) from cityos_meta.schema_migrations").fetchone()[0]
    assert applied == len([p for p in (REPO / "platform/db/migrations").iterdir() if p.suffix in (".sql", ".py")])
    if not settings.ckan_url:
        missing("no CITYOS_CKAN_URL: run the suite with `./cityos test`")
    done = _run(wheel_env, "cityos", "publish", "--dry-run", env={
        "CITYOS_DATABASE_URL": wheel_database, "CITYOS_CKAN_URL": settings.ckan_url,
        "CITYOS_CKAN_TOKEN": settings.ckan_token or ""})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "portal.toml" not in done.stderr


def test_the_wheel_serves_the_apps_and_the_api(wheel_env, wheel_database, test_broker):
    port = free_port()
    proc = subprocess.Popen(
        [wheel_env["python"], "-m", "uvicorn", "cityos.platform.api.app:create_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--no-proxy-headers"], cwd=wheel_env["cwd"], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, env={**wheel_env["env"], "CITYOS_DATABASE_URL": wheel_database,
                                       "CITYOS_MQTT_URL": test_broker.url, "CITYOS_API_PORT": str(port)})
    base = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=30)
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
        bundle = httpx.get(f"{base}/apps/vendor/maplibre-gl/maplibre-gl.mjs", timeout=5)
        assert bundle.status_code == 200 and len(bundle.content) > 100_000
        assert httpx.get(f"{base}/apps/hydrants/", timeout=5).status_code == 200
        assert httpx.get(f"{base}/docs", timeout=5).status_code == 200
        assert httpx.get(f"{base}/apps/vendor/swagger-ui/swagger-ui-bundle.js", timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_an_ingest_worker_from_the_wheel_stores_a_reading(wheel_env, wheel_database, test_broker, tmp_path):
    from cityos.ingest.devices import add_device

    with psycopg.connect(wheel_database, autocommit=True) as conn:
        new = add_device(conn, "hems-wheel1", "hems")
    test_broker.provision(wheel_database, new)
    log = tmp_path / "ingest.log"
    proc = subprocess.Popen(["cityos", "ingest", "--workers", "1"], cwd=wheel_env["cwd"], stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True,
                            env={**wheel_env["env"], "CITYOS_DATABASE_URL": wheel_database,
                                 "CITYOS_MQTT_URL": test_broker.url, "CITYOS_HOME": str(tmp_path)})
    try:
        # subscribed (the SUBACK), as tests/servers.py Workers waits for it: a condition, not a delay
        wait_for(lambda: b"ingest worker subscribed" in log.read_bytes() or proc.poll() is not None, timeout=30)
        assert proc.poll() is None, log.read_text()
        reading = json.dumps({"t": datetime.now(UTC).isoformat(), "power_w": 321.5})
        ok, reason = publish_once(test_broker.device_url("hems-wheel1", new.mqtt_password),
                                  "cityos/v1/hems/hems-wheel1/readings", reading)
        assert ok, reason

        def stored() -> bool:
            with psycopg.connect(wheel_database) as conn:
                return conn.execute("select count(*) from telemetry.energy_readings "
                                    "where device_id = 'hems-wheel1'").fetchone()[0] >= 1

        wait_for(stored, timeout=15)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
