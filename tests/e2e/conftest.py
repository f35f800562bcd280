"""End-to-end fixtures: the API serving the apps, test data, and Debian's headless Chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from helpers import api_server

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic", "--enable-unsafe-swiftshader"]


@pytest.fixture(scope="module")
def city_env(apps_built, database_url, test_broker, tmp_path_factory) -> dict[str, str]:
    """A small demo city in the test database, and the API's environment for it."""
    from cityos.gis.democity import generate_city, load_city

    with psycopg.connect(database_url) as conn:
        load_city(conn, generate_city(seed=5, residents=3000))
        conn.commit()
    return {"CITYOS_DATABASE_URL": database_url, "CITYOS_MQTT_URL": test_broker.url,
            "CITYOS_HOME": str(tmp_path_factory.mktemp("e2e"))}


@pytest.fixture(scope="module")
def city_api(city_env):
    """The API serving the demo city (a generous rate, so the suite's many page loads are not limited; the apps'
    base layers rebuilt on every request, so a test sees the rows it planted)."""
    with api_server({**city_env, "CITYOS_ANONYMOUS_RATE_PER_MINUTE": "10000",
                     "CITYOS_APP_DATA_REFRESH_S": "0"}) as base:
        yield base


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture()
def page(browser, request, tmp_path):
    """A page in a fresh browser context (desktop size; ``@pytest.mark.phone`` for 390x844)."""
    viewport = PHONE if request.node.get_closest_marker("phone") else DESKTOP
    context = browser.new_context(locale="ja-JP", viewport=viewport, service_workers="allow",
                                  has_touch=viewport is PHONE, is_mobile=viewport is PHONE)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    # Every page runs under the API's Content-Security-Policy: a refused script, worker, style, tile or
    # connection is logged by Chromium and fails the test that loaded the page.
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
    context.close()
    assert violations == [], "the page broke the Content-Security-Policy"
