"""The living-lab apps in headless Chromium against the real API, broker and database."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import psycopg
import pytest
from publisher import publish_once

from cityos.ingest.devices import add_device
from helpers import api_server, free_port, wait_js


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


DRAWN = ("(() => { const m = window.__map; if (!m) return null; "
         "const n = (id) => m.queryRenderedFeatures({layers: [id]}).length; "
         "return {roads: n('roads'), districts: n('districts'), hydrants: n('hydrants')}; })()")


def _drawn(page) -> dict:
    """How many features of the streets, district outlines and hydrant markers the map has drawn."""
    return wait_js(page, f"(() => {{ const d = {DRAWN}; return d && d.roads && d.districts && d.hydrants && d; }})()",
                   timeout=20_000)


@pytest.mark.phone
def test_hydrant_map_works_offline_after_one_visit_and_sends_a_queued_report(page, browser, city_env, database_url):
    """The field condition: ONE online visit at phone size, then no network and no server at all. The reload
    shows the nearest hydrants, the map with streets, district outlines and markers, and an offline
    notice; a report made offline is queued and delivered once the network is back, then (approved)
    visible to another resident's browser."""
    port = free_port()
    with api_server(city_env, port=port) as base:
        page.goto(f"{base}/apps/hydrants/")
        wait_js(page, "window.__hydrantsRendered === 10", timeout=30_000)
        _drawn(page)
        wait_js(page, "navigator.serviceWorker.ready.then((r) => r.active?.state === 'activated')", timeout=15_000)
        wait_js(page, "caches.open('cityos-data-v1').then((c) => c.keys()).then((k) => k.length >= 5)", timeout=15_000)
    # the server is gone and the browser is offline: only what the one visit left behind is there
    page.context.set_offline(True)
    page.reload()
    wait_js(page, "window.__hydrantsRendered === 10", timeout=30_000)
    assert page.locator("li.hydrant").count() == 10
    drawn = _drawn(page)
    assert drawn["roads"] > 0 and drawn["districts"] > 0 and drawn["hydrants"] > 0
    assert "オフライン" in page.inner_text("#status")
    first = page.locator("li.hydrant").first
    hydrant_id = first.get_attribute("data-id")
    first.locator("button.report-buried").click()
    wait_js(page, "window.__queuedReports === 1", timeout=10_000)
    assert "送信待ち" in first.inner_text() and page.locator("#outbox").is_visible()
    with psycopg.connect(database_url, autocommit=True) as conn:
        before = conn.execute("select count(*) from gis.hydrant_reports where hydrant_id = %s",
                              (hydrant_id,)).fetchone()[0]
    with api_server(city_env, port=port) as base:  # the network is back (same origin)
        page.context.set_offline(False)
        wait_js(page, "window.__queuedReports === 0", timeout=30_000)
        with psycopg.connect(database_url, autocommit=True) as conn:
            rows = conn.execute("select id, status from gis.hydrant_reports where hydrant_id = %s order by id",
                                (hydrant_id,)).fetchall()
            assert len(rows) == before + 1 and rows[-1][1] == "buried"
            conn.execute("update gis.hydrant_reports set moderation = 'approved', moderated_by = 'e2e', "
                         "moderated_at = now() where id = %s", (rows[-1][0],))
        other = browser.new_context(locale="ja-JP", viewport={"width": 390, "height": 844})
        try:
            resident = other.new_page()
            resident.goto(f"{base}/apps/hydrants/")
            wait_js(resident, f"document.querySelector(\"li[data-id='{hydrant_id}'] .tag-buried\") !== null",
                    timeout=30_000)
        finally:
            other.close()


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
    page.press("#token", "Enter")  # the phone keyboard's Go submits the form (the button was once not yet laid out)
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
    wait_js(page, "document.getElementById('mine').textContent.length > 0", timeout=10_000)
    assert "無効" in page.inner_text("#mine")


def test_staff_map_draws_every_analysis_layer_with_a_legend(page, city_api):
    page.goto(f"{city_api}/apps/staff/")
    wait_js(page, "window.__staffLayers.length === 4", timeout=60_000)
    # and the layer declared with a style in its one file (gis/layers/evacuation_shelters.py)
    wait_js(page, "window.__declaredLayers.includes('evacuation_shelters')", timeout=60_000)
    assert page.evaluate("window.__map.getLayer('evacuation_shelters').type") == "circle"
    # 4 age-share classes, 4 coverage, 2 hotspot kinds, 2 roads, 1 shelter
    assert page.locator("#legend li").count() == 13
    assert page.locator("#toggles input[type=checkbox]").count() == 5
    assert page.errors == []
