"""The production deployment description and the package's extras."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((REPO / "deploy/production/compose.yaml").read_text())


def test_compose_file_names_the_services_the_readme_lists():
    services = set(_compose()["services"])
    assert {"db", "broker", "ckan", "api", "ingest", "migrate"} <= services
    readme = (REPO / "deploy/production/README.md").read_text()
    for name in services:
        assert f"`{name}`" in readme, f"service {name} is not documented"


def test_compose_database_is_timescaledb_ha():
    assert _compose()["services"]["db"]["image"].startswith("timescale/timescaledb-ha")


def test_compose_has_no_literal_passwords():
    text = (REPO / "deploy/production/compose.yaml").read_text()
    for match in re.finditer(r"^\s*\w*PASSWORD\w*:\s*(.+)$", text, re.MULTILINE):
        assert match.group(1).startswith("${"), match.group(0)
    for match in re.finditer(r"://[^:/\s]+:([^@\s]+)@", text):
        assert match.group(1).startswith("${"), match.group(0)


def _requirement_names(reqs: list[str]) -> set[str]:
    return {re.split(r"[<>=\[; ]", r, maxsplit=1)[0].lower() for r in reqs}


def test_gateway_install_pulls_no_gis_stack_or_web_framework():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = _requirement_names(project["dependencies"] + project["optional-dependencies"]["gateway"])
    assert not names & {"geopandas", "gdal", "shapely", "pyproj", "pyogrio", "fastapi", "uvicorn", "psycopg"}


def test_no_top_level_folder_is_a_package():
    for folder in ("platform", "ingest", "gis", "opendata", "apps", "deploy"):
        assert not (REPO / folder / "__init__.py").exists(), folder


def test_every_long_running_service_restarts_after_a_crash():
    services = _compose()["services"]
    for name, service in services.items():
        if name not in ("migrate", "broker-accounts"):  # one-shot jobs
            assert service.get("restart") in ("unless-stopped", "always"), name


def test_the_api_container_has_a_healthcheck_on_healthz():
    check = _compose()["services"]["api"]["healthcheck"]
    assert "/healthz" in " ".join(check["test"])


def test_uvicorn_never_rewrites_the_client_address_from_forwarded_headers():
    """The app decides whom to believe (CITYOS_TRUSTED_PROXIES); uvicorn's own handling trusts 127.0.0.1."""

    assert "--no-proxy-headers" in _compose()["services"]["api"]["command"]
    assert '"--no-proxy-headers"' in (REPO / "deploy/runtime/apiserver.py").read_text()


def test_production_broker_uses_the_dynamic_security_plugin_with_bounded_queues():
    conf = (REPO / "deploy/production/mosquitto/mosquitto.conf").read_text()
    settings = dict(line.split(" ", 1) for line in conf.splitlines() if line and not line.startswith("#"))
    assert settings["plugin"].endswith("mosquitto_dynamic_security.so")
    assert settings["plugin_opt_config_file"].startswith("/mosquitto/data/")  # the plugin rewrites it
    assert "acl_file" not in settings and "password_file" not in settings
    assert int(settings["max_queued_messages"]) > 0 and int(settings["max_queued_bytes"]) > 0
    assert settings["persistent_client_expiration"]


def test_compose_writes_the_broker_accounts_before_the_broker_starts():
    services = _compose()["services"]
    assert services["broker"]["depends_on"]["broker-accounts"]["condition"] == "service_completed_successfully"
    assert "cityos devices sync" in " ".join(services["broker-accounts"]["command"])
