"""Security headers: nosniff and no framing everywhere, a Content-Security-Policy on the apps and /docs."""

from __future__ import annotations

import re

import httpx
import pytest

from cityos.platform.api.security import script_hashes

API_BROKER = False
API_ENV = {"CITYOS_BASEMAP_TILES": "https://cyberjapandata.gsi.go.jp/xyz/std/{z}/{x}/{y}.png"}


@pytest.fixture(scope="module")
def api(apps_built, api):  # the shared API (tests/conftest.py), started once the apps are built (it mounts them)
    return api


def _policy(response: httpx.Response) -> dict[str, str]:
    return {d.split()[0]: d for d in (p.strip() for p in response.headers["content-security-policy"].split(";")) if d}


@pytest.mark.parametrize("app", ["hydrants", "snowplows", "energy", "staff"])
def test_an_app_runs_only_its_own_scripts_and_cannot_be_framed(api, app):
    response = httpx.get(f"{api}/apps/{app}/")
    assert response.status_code == 200
    policy = _policy(response)
    assert policy["script-src"] == "script-src 'self'"
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert "https://cyberjapandata.gsi.go.jp" in policy["img-src"]  # the configured basemap
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_docs_allow_their_one_inline_script_by_hash_and_nothing_inline_besides(api):
    response = httpx.get(f"{api}/docs")
    assert response.status_code == 200 and "swagger" in response.text.lower()
    script_src = _policy(response)["script-src"]
    assert "'unsafe-inline'" not in script_src
    hashes = script_hashes(response.text)
    assert hashes and all(h in script_src for h in hashes)
    assert _policy(response)["frame-ancestors"] == "frame-ancestors 'none'"


def test_api_answers_are_not_sniffed_or_framed(api):
    for path in ("/api/v1/sensors", "/ogc", "/healthz", "/api/v1/nowhere"):
        response = httpx.get(f"{api}{path}")
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert re.search(r"frame-ancestors 'none'", response.headers["content-security-policy"]), path
