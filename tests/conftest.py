"""Shared fixtures: the real servers started by ``cityos test`` (or named by CITYOS_* URLs).

Integration tests get a fresh database ``cityos_test`` on the platform's PostgreSQL server,
migrated with the real migrations, so demo data in the main database is never touched.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from servers import TestBroker, Workers

from cityos.platform.settings import Settings, load_settings
from helpers import api_server, create_database, missing

REPO = Path(__file__).resolve().parents[1]
# Parallel sessions on one server each set their own name.
TEST_DATABASE = os.environ.get("CITYOS_TEST_DATABASE", "cityos_test")
# The product answers repeated anonymous reads from a 2 s micro-cache; tests read what they just wrote, so
# every API they start has it off unless the test sets CITYOS_API_CACHE_S itself (the cache's own tests).
os.environ.setdefault("CITYOS_API_CACHE_S", "0")
# Likewise series read raw rows: tests write readings into the past with SQL, behind the roll-ups' back
# (tests/integration/test_series_rollups.py turns them on).
os.environ.setdefault("CITYOS_SERIES_ROLLUPS", "false")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings of the running stack (environment, then .cityos/local.env)."""
    return load_settings()


@pytest.fixture(scope="session")
def stack():
    """The local runtime (for tests that stop and start its servers)."""
    from cityos.deploy.runtime.stack import Stack

    return Stack.from_env()


@pytest.fixture(scope="session")
def database_url(settings: Settings) -> Iterator[str]:
    """URL (owner role) of a freshly created and migrated test database."""

    from cityos.platform.db.migrate import migrate

    if explicit := os.environ.get("CITYOS_TEST_DATABASE_URL"):
        migrate(explicit)
        yield explicit
        return
    if not settings.admin_database_url:
        missing("no CITYOS_ADMIN_DATABASE_URL or CITYOS_TEST_DATABASE_URL: run the suite with `./cityos test`")
    yield create_database(settings, TEST_DATABASE)


@pytest.fixture(scope="module")
def private_database_url(settings: Settings, request) -> str:
    """A database of the test module's own (for tests that replace whole tables, such as the registry)."""
    if not settings.admin_database_url:
        missing("no CITYOS_ADMIN_DATABASE_URL: run the suite with `./cityos test`")
    return create_database(settings, f"{TEST_DATABASE}_{request.module.__name__.rsplit('.', 1)[-1]}"[:63])


@pytest.fixture()
def db(database_url: str):
    """A connection to the test database (autocommit)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def mqtt_url(settings: Settings) -> str:
    """The broker URL with the platform service's credentials."""
    if not settings.mqtt_url:
        missing("no CITYOS_MQTT_URL: run the suite with `./cityos test`")
    return settings.mqtt_url


# -- a dedicated broker and ingest workers (see tests/servers.py) ------------------------------------
@pytest.fixture(scope="session")
def test_broker(settings) -> Iterator[TestBroker]:
    # Under the state folder, not /tmp: Mosquitto drops root privileges and must reach its files.
    home = Path(settings.home) / "test-runs" / f"broker-{os.getpid()}"
    shutil.rmtree(home, ignore_errors=True)
    broker = TestBroker(home)
    broker.start()
    yield broker
    broker.stop()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def apps_built():
    """The apps' files, built once (the API mounts an app's folder only if it exists when the API starts)."""
    from cityos.apps.build import ensure_built

    return ensure_built()


@pytest.fixture(scope="module")
def api(tmp_path_factory, request) -> Iterator[str]:
    """The API as a subprocess (tests/helpers.py api_server) of the test module's own; its base URL.

    By default it runs on the test database and the test broker. A module changes that with module-level names:

    - ``API_ENV``: settings to add, a dict (e.g. ``{"CITYOS_ANONYMOUS_RATE_PER_MINUTE": "5"}``) or a function
      of the test broker (for settings that name its files);
    - ``API_DATABASE``: the name of a fixture (module or session scope) giving the database URL, e.g.
      ``"private_database_url"`` for a module that replaces whole tables;
    - ``API_BROKER = False``: no broker (``CITYOS_MQTT_URL`` empty, so ``/readyz`` reports it missing), for a
      module that reads only the database.

    A module that plants data before the API starts overrides this fixture by name with the planting fixture
    first: ``def api(planted, api): return api``.
    """
    module = request.module
    env = {"CITYOS_DATABASE_URL": request.getfixturevalue(getattr(module, "API_DATABASE", "database_url")),
           "CITYOS_MQTT_URL": request.getfixturevalue("test_broker").url if getattr(module, "API_BROKER", True) else "",
           "CITYOS_HOME": str(tmp_path_factory.mktemp("api"))}
    extra = getattr(module, "API_ENV", {})
    env.update(extra(request.getfixturevalue("test_broker")) if callable(extra) else extra)
    with api_server(env) as base:
        yield base


@pytest.fixture()
def workers(database_url, test_broker, tmp_path) -> Iterator[Workers]:
    """One running ingest worker for the test (stopped afterwards)."""
    running = Workers(database_url, test_broker.url, tmp_path)
    running.start()
    yield running
    running.stop()


@pytest.fixture()
def register(database_url, test_broker):
    """Register a device in the test database and on the test broker; returns its password."""
    from cityos.ingest.devices import add_device

    def _register(device_id: str, domain: str, **kwargs) -> str:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("delete from core.devices where device_id = %s", (device_id,))
            new = add_device(conn, device_id, domain, **kwargs)
        test_broker.provision(database_url, new)
        return new.mqtt_password

    return _register
