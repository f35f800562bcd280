"""The living-lab apps in headless Chromium against the real API, broker and database."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import psycopg
from publisher import publish_once

from cityos.ingest.devices import add_device
from helpers import wait_js


def test_hydrant_map_lists_the_nearest_ten_facilities(page, city_api):
    page.goto(f"{city_api}/apps/hydrants/")
    wait_js(page, "window.__hydrantsRendered === 10", timeout=30_000)
    items = page.locator("li.hydrant")
    assert items.count() == 10
    assert " m " in items.first.inner_text()
    assert page.errors == []


def test_hydrant_map_shows_aizuwakamatsus_real_outline_and_credits_the_data(page, city_api):
    page.goto(f"{city_api}/apps/hydrants/")
    wait_js(page, "window.__hydrantsRendered === 10", timeout=30_000)
    wait_js(page, "Array.isArray(window.__boundaryNames)", timeout=30_000)
    assert page.evaluate("window.__boundaryNames") == ["会津若松市"]
    footer = page.locator("footer.attribution").inner_text()
    assert "Code for AIZU" in footer and "CC BY 4.0" in footer and "国土数値情報" in footer


def test_hydrant_type_filter_shows_only_tanks(page, city_api):
    page.goto(f"{city_api}/apps/hydrants/")
    wait_js(page, "window.__hydrantsRendered === 10", timeout=30_000)
    page.select_option("#kind", "防火水槽")
    texts = page.locator("li.hydrant").all_inner_texts()
    assert texts and all(t.startswith("防火水槽") for t in texts)


def test_hydrant_map_switches_to_english(page, city_api):
    page.goto(f"{city_api}/apps/hydrants/")
    page.click("#lang")
    assert page.inner_text("h1") == "Hydrant map"
    assert page.evaluate("document.documentElement.lang") == "en"


def test_hydrant_map_reloads_offline_after_the_first_visit(page, city_api):
    page.goto(f"{city_api}/apps/hydrants/")
    wait_js(page, "window.__hydrantsRendered === 10", timeout=30_000)
    wait_js(page, "navigator.serviceWorker.controller !== null || "
                           "navigator.serviceWorker.ready.then(() => true)", timeout=10_000)
    page.reload()  # now controlled by the service worker, which stores what it fetches
    wait_js(page, "window.__hydrantsRendered === 10", timeout=30_000)
    page.context.set_offline(True)
    page.reload()
    wait_js(page, "window.__hydrantsRendered === 10", timeout=30_000)
    assert page.locator("li.hydrant").count() == 10


def test_snowplow_marker_moves_within_a_second_of_the_message(page, city_api, database_url, test_broker, workers):
    """From the broker through the ingest worker (validated, committed) to the marker in the browser."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from core.devices where device_id = 'plow-e2e'")
        add_device(conn, "plow-e2e", "vehicle", kind="snowplow", public=True)
    page.goto(f"{city_api}/apps/snowplows/")
    wait_js(page, "window.__liveReady === true", timeout=30_000)
    reading = {"t": datetime.now(UTC).isoformat(), "lat": 37.5011, "lon": 139.9333, "speed_kmh": 21.0,
               "blade_down": True}
    sent = time.perf_counter()
    assert publish_once(test_broker.url, "cityos/v1/vehicle/plow-e2e/readings", json.dumps(reading))[0]
    wait_js(page, "window.__positions.get('plow-e2e')?.lat === 37.5011", timeout=5_000)
    latency = time.perf_counter() - sent
    print(f"\nsnowplow marker latency, publish to browser: {latency * 1000:.0f} ms")
    assert latency < 1.0
    assert page.locator("li[data-id='plow-e2e']").count() == 1


def test_energy_dashboard_shows_my_home_beside_my_district(page, city_api, database_url):
    from cityos.platform.auth import create_token

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from core.devices where device_id like 'hems-e2e%'")
        for i in range(3):
            add_device(conn, f"hems-e2e{i}", "hems", owner_subject=f"e2e-home-{i}", district_code="07202-001")
            conn.execute("insert into core.consent_events (subject_id, category, purpose, action, actor) "
                         "values (%s, 'energy', 'services', 'grant', 'test')", (f"e2e-home-{i}",))
            conn.execute("""insert into telemetry.energy_readings (time, device_id, metric, value)
                            select now() - make_interval(mins => m * 30), %s, 'power_w', %s
                            from generate_series(1, 96) m""", (f"hems-e2e{i}", 300 + 100 * i))
        token = create_token(conn, "household-e2e0", ["household:hems-e2e0"])
    page.goto(f"{city_api}/apps/energy/")
    page.fill("#token", token)
    page.click("#signin button")
    wait_js(page, "Array.isArray(window.__myHours)", timeout=20_000)
    hours = page.evaluate("window.__myHours")
    assert len(hours) == 24
    assert {h["my_w"] for h in hours if h["my_w"] is not None} == {300.0}
    assert page.locator("#bars .bar").count() == 48
    assert page.errors == []


def test_energy_dashboard_refuses_a_wrong_token(page, city_api):
    page.goto(f"{city_api}/apps/energy/")
    page.fill("#token", "cty_wrong")
    page.click("#signin button")
    wait_js(page, "document.getElementById('status').textContent.length > 0", timeout=10_000)
    assert "無効" in page.inner_text("#status")


def test_staff_map_draws_every_analysis_layer_with_a_legend(page, city_api):
    page.goto(f"{city_api}/apps/staff/")
    wait_js(page, "window.__staffLayers.length === 4", timeout=60_000)
    assert page.locator("#legend li").count() == 12  # 4 age-share classes, 4 coverage, 2 hotspot kinds, 2 roads
    assert page.locator("#toggles input[type=checkbox]").count() == 4
    assert page.errors == []
