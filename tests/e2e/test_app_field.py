"""The apps as residents meet them in the field: a crowd behind one address, bad data, phones, times."""

from __future__ import annotations

import time

import httpx
import psycopg
import pytest

from helpers import api_server, wait_for, wait_js

#: The rate window of the crowded API (CITYOS_RATE_WINDOW_S): the 429 test waits at most two of them.
CROWDED_WINDOW_S = 15
APPS = ("hydrants", "snowplows", "energy", "staff")
READY = {"hydrants": "window.__hydrantsRendered === 10", "snowplows": "window.__coverageLoaded > 0",
         "energy": "window.__energyLoaded !== undefined", "staff": "window.__staffLayers.length === 4"}
DRAWN = "(() => { const m = window.__map; return m && m.queryRenderedFeatures({layers: ['{layer}']}).length; })()"


@pytest.fixture(scope="module")
def crowded_api(city_env):
    """The API with the default anonymous rate (120 per window and address), in windows of CROWDED_WINDOW_S."""
    with api_server({**city_env, "CITYOS_ANONYMOUS_RATE_PER_MINUTE": "120",
                     "CITYOS_RATE_WINDOW_S": str(CROWDED_WINDOW_S)}) as base:
        yield base


def _exhaust_the_address(base: str) -> None:
    """Open-API requests from this address until it is refused (a window's 120 and then some): many residents
    behind one carrier NAT, school or shelter."""
    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(121):
            client.get("/ogc/conformance")
        wait_for(lambda: client.get("/ogc/conformance").status_code == 429, timeout=30, interval=0)


def test_hydrant_map_shows_hydrants_when_its_address_is_over_the_api_rate(page, crowded_api):
    _exhaust_the_address(crowded_api)
    page.goto(f"{crowded_api}/apps/hydrants/")
    wait_js(page, "window.__hydrantsRendered === 10", timeout=30_000)
    assert wait_js(page, DRAWN.replace("{layer}", "hydrants"), timeout=20_000) > 0
    assert wait_js(page, DRAWN.replace("{layer}", "roads"), timeout=20_000) > 0
    assert page.errors == []


def test_snowplow_map_says_it_is_refused_and_recovers_after_retry_after(page, crowded_api):
    """A 429 on the coverage analysis shows saved-or-nothing with a message, never a blank page, and the map
    asks again after Retry-After (the limit counts in fixed windows of CROWDED_WINDOW_S: start early in one, so
    the page meets the exhausted window and its retry the next)."""
    wait_for(lambda: time.time() % CROWDED_WINDOW_S < 2, timeout=CROWDED_WINDOW_S + 1, interval=0.1)
    _exhaust_the_address(crowded_api)
    page.goto(f"{crowded_api}/apps/snowplows/")
    wait_js(page, "document.getElementById('status').textContent.includes('アクセスが集中')", timeout=15_000)
    assert wait_js(page, DRAWN.replace("{layer}", "roads"), timeout=20_000) > 0  # the streets are static files
    wait_js(page, "window.__coverageLoaded > 0", timeout=45_000)
    wait_js(page, "!document.getElementById('status').textContent.includes('アクセスが集中')", timeout=5_000)
    assert page.errors == []


def test_hydrant_map_escapes_html_and_survives_missing_values(page, city_api, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from gis.fire_water where id like 'BAD-%'")
        conn.execute("insert into gis.fire_water (id, kind, address, note, geom) values "
                     "('BAD-1', '<b>消火栓</b>', '<img src=x id=planted>', 'NaN', "
                     " st_setsrid(st_makepoint(139.9297, 37.4947), 4326))")
    try:
        page.goto(f"{city_api}/apps/hydrants/")
        wait_js(page, "window.__hydrantsRendered === 10", timeout=30_000)
        item = page.locator("li[data-id='BAD-1']")
        assert "<img src=x id=planted>" in item.inner_text()
        assert page.locator("#planted").count() == 0
        assert page.errors == []
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("delete from gis.fire_water where id like 'BAD-%'")


def test_times_render_from_epoch_seconds_and_never_as_invalid(page, city_api):
    page.goto(f"{city_api}/apps/snowplows/")
    shown = page.evaluate("import('/apps/shared/common.js').then((m) => ["
                          "m.formatTime(1764554400, {date: true}), m.formatTime('1764554400', {date: true}), "
                          "m.formatTime('2025-12-01T02:00:00Z', {date: true}), "
                          "m.formatTime(1764554400000, {date: true}), "
                          "m.formatTime('garbage'), m.formatTime(null), m.formatTime(NaN), m.formatTime({})])")
    assert shown[:4] == ["12/1 11:00"] * 4  # 2025-12-01 02:00 UTC, shown in Aizu's time
    assert shown[4:] == ["—"] * 4


def test_energy_dashboard_opens_with_values_where_no_district_reaches_k(page, city_api, database_url):
    """Like a real city's opt-in (about 1 %): 12 homes over three districts of one town, none with k = 10
    (open-data consent: the anonymous map shows no other home)."""
    from cityos.ingest.devices import add_device

    with psycopg.connect(database_url, autocommit=True) as conn:
        codes = [r[0] for r in conn.execute(
            "select code from gis.districts where name_ja like '門田町%%' order by code limit 3").fetchall()]
        assert len(codes) == 3
        conn.execute("delete from core.devices where device_id like 'hems-town%%'")
        for i in range(12):
            add_device(conn, f"hems-town{i}", "hems", owner_subject=f"town-home-{i}", district_code=codes[i % 3])
            conn.execute("insert into core.consent_events (subject_id, category, purpose, action, actor) "
                         "values (%s, 'energy', 'open_data', 'grant', 'test')", (f"town-home-{i}",))
            conn.execute("""insert into telemetry.energy_readings (time, device_id, metric, value)
                            select date_trunc('hour', now()) - make_interval(mins => m * 30), %s, 'power_w', %s
                            from generate_series(1, 48) m""", (f"hems-town{i}", 400 + 10 * i))
    page.goto(f"{city_api}/apps/energy/")
    wait_js(page, "window.__energyLoaded > 0", timeout=30_000)
    values = wait_js(page, "Object.keys(window.__districtValues || {}).length >= 3 && window.__districtValues",
                     timeout=10_000)
    assert all(380 < values[c] < 560 for c in codes)
    assert page.evaluate("window.__levels.town") >= 3
    latest = page.evaluate("Number(document.getElementById('hour').value)")
    now_jst = int(time.strftime("%H", time.gmtime(time.time() + 9 * 3600)))
    assert latest == (now_jst - 1) % 24  # the latest complete hour, which has data
    assert "町" in page.inner_text("#levels")
    assert page.errors == []


@pytest.mark.parametrize("app", APPS)
def test_app_is_usable_on_a_phone(browser, city_api, app):
    """390x844: the title on one line, nothing wider than the screen, every control at least 44 px."""
    from conftest import ARTIFACTS, PHONE

    context = browser.new_context(locale="ja-JP", viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(f"{city_api}/apps/{app}/")
        wait_js(page, READY[app], timeout=60_000)
        title = page.evaluate("(() => { const h = document.querySelector('h1'); const s = getComputedStyle(h); "
                              "return [h.getBoundingClientRect().height, parseFloat(s.lineHeight) || "
                              "parseFloat(s.fontSize) * 1.5]; })()")
        assert title[0] <= title[1] * 1.2, f"the title wraps: {title}"
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        small = page.evaluate("""[...document.querySelectorAll('button, select, input, .toggles label')]
            .filter((el) => el.offsetParent !== null && el.type !== 'checkbox')
            .map((el) => [el.id || el.className || el.tagName, el.getBoundingClientRect()])
            .filter(([, r]) => r.width < 44 || r.height < 44).map(([n, r]) => `${n} ${r.width}x${r.height}`)""")
        assert small == []
        wait_js(page, DRAWN.replace("{layer}", "districts"), timeout=20_000)  # drawn before the screenshots
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{app}-phone.png"))
        page.set_viewport_size({"width": 1280, "height": 800})
        page.screenshot(path=str(ARTIFACTS / f"{app}-desktop.png"))
    finally:
        context.close()


PAGES = {"/": "document.querySelectorAll('.links a').length >= 8",
         "/apps/hydrants/": READY["hydrants"], "/apps/snowplows/": READY["snowplows"],
         "/apps/energy/": READY["energy"], "/apps/staff/": READY["staff"],
         "/docs": "document.querySelectorAll('.opblock').length > 10",
         "/redoc": "document.querySelectorAll('.api-content h2').length > 5"}


def _axe(page, rules: str = "") -> list[str]:
    """Serious and critical axe-core findings (npm's axe-core, injected through the debugger protocol, so
    not past the page's CSP); ``rules`` limits the run to those rule ids."""
    from cityos.apps.build import AXE

    options = f"{{resultTypes: ['violations'], runOnly: {rules}}}" if rules else "{resultTypes: ['violations']}"
    return page.evaluate(AXE.read_text(encoding="utf-8") + f"""
        ;axe.run(document, {options}).then((r) => r.violations
            .filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => `${{v.id}} (${{v.impact}}): ${{v.nodes.length}} nodes, e.g. `
                 + v.nodes.slice(0, 4).map((n) => n.target.join(' ').slice(-60) + ' ' + n.failureSummary
                 .replace(/\\s+/g, ' ').slice(0, 160)).join(' | ')))""")


@pytest.mark.parametrize("path", list(PAGES))
def test_page_has_no_serious_accessibility_violation(page, city_api, path):
    """Every page as it opens: the landing page, each app, Swagger UI and ReDoc (no rule or element excluded)."""
    page.goto(f"{city_api}{path}")
    wait_js(page, PAGES[path], timeout=60_000)
    found = _axe(page)
    assert found == [], "\n".join(found)


def _axe_after(page, step: str) -> None:
    page.wait_for_timeout(300)  # the widget has rendered what the click changed
    found = _axe(page)
    assert found == [], f"after {step}:\n" + "\n".join(found)


def test_swagger_ui_has_no_serious_accessibility_violation_once_an_operation_is_tried(page, city_api):
    """As a developer uses /docs: open an operation, Try it out, Execute, expand the schemas, open Authorize."""
    page.goto(f"{city_api}/docs")
    wait_js(page, PAGES["/docs"], timeout=60_000)
    operation = page.locator(".opblock").filter(has_text="/ogc/collections/{collection_id}/items").first
    operation.locator(".opblock-summary-control").click()
    operation.locator(".try-out__btn").click()
    wait_js(page, "document.querySelector('.execute') !== null", timeout=10_000)
    _axe_after(page, "Try it out")
    operation.locator("input[placeholder='collection_id']").fill("fire_water")
    operation.locator(".execute").click()
    wait_js(page, "document.querySelector('.live-responses-table .response-col_status') !== null", timeout=20_000)
    _axe_after(page, "Execute")
    page.locator(".opblock").filter(has_text="/api/v1/consents").first.locator(".opblock-summary-control").click()
    page.evaluate("document.querySelectorAll('.models .json-schema-2020-12-expand-deep-button')"
                  ".forEach((b) => b.click())")
    _axe_after(page, "opening a POST operation and expanding every schema")
    page.locator(".btn.authorize").first.click()
    wait_js(page, "document.querySelector('.modal-ux') !== null", timeout=10_000)
    _axe_after(page, "opening Authorize")
    assert page.errors == []


def test_redoc_has_no_serious_accessibility_violation_once_operations_are_opened(page, city_api):
    """As a reader uses /redoc: a tag's operations in the menu, every response and field expanded, the other
    response tabs, another content type, a search."""
    page.goto(f"{city_api}/redoc")
    wait_js(page, PAGES["/redoc"], timeout=60_000)
    page.click("li[role=menuitem][aria-label='OGC API Features'] > label")
    page.locator("li[role=menuitem][data-item-id*='items']").first.click()
    _axe_after(page, "opening a tag in the menu")
    page.evaluate("""(() => {
        const click = (sel) => document.querySelectorAll(sel).forEach((b) => b.click());
        document.querySelectorAll('.api-content button:not([disabled]) > strong')
            .forEach((code) => code.parentElement.click());
        click('.api-content button[aria-label^=expand]');
        document.querySelectorAll('.api-content button > .http-verb').forEach((verb) => verb.parentElement.click());
        click('[role=tablist] > [role=tab][aria-selected=false]');
    })()""")
    _axe_after(page, "expanding every response, field and endpoint and choosing the other response tabs")
    select = page.locator("select.dropdown-select").first
    select.select_option(select.evaluate("(s) => s.options[s.options.length - 1].value"))
    page.fill("input[placeholder='Search...']", "hydrant")
    wait_js(page, "document.querySelector(\"[data-role='search:results'] li\") !== null", timeout=10_000)
    _axe_after(page, "choosing a content type and searching")
    assert page.errors == []


def test_docs_and_landing_work_without_internet(page, city_api):
    """Swagger UI, ReDoc and the landing page come from the platform itself (the browser has no other network)."""
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(city_api) else route.abort())
    page.goto(f"{city_api}/")
    links = page.eval_on_selector_all(".links a", "(as) => as.map((a) => a.getAttribute('href'))")
    assert {"/apps/hydrants/", "/apps/snowplows/", "/apps/energy/", "/apps/staff/", "/docs", "/redoc"} <= set(links)
    assert any(link.startswith("http") for link in links)  # the open-data portal
    assert page.evaluate("document.documentElement.lang") == "ja"
    assert httpx.get(f"{city_api}/favicon.ico").status_code == 200
    assert httpx.get(f"{city_api}/apps/", follow_redirects=True).status_code == 200
    page.goto(f"{city_api}/docs")
    wait_js(page, PAGES["/docs"], timeout=30_000)
    page.goto(f"{city_api}/redoc")
    wait_js(page, PAGES["/redoc"], timeout=60_000)
    assert page.errors == []
