"""The production deployment description and the package's extras."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


PRODUCTION = REPO / "deploy/production"


def _compose() -> dict:
    return yaml.safe_load((PRODUCTION / "compose.yaml").read_text())


def _one_shot_jobs(services: dict) -> set[str]:
    """Services others wait for to *complete* (migrate, broker-accounts), and the operator's jobs run by hand
    (profile ``ops``: backup): they run once and exit."""
    by_hand = {name for name, service in services.items() if service.get("profiles") == ["ops"]}
    awaited = {name for service in services.values() if isinstance(service.get("depends_on"), dict)
               for name, dep in service["depends_on"].items()
               if dep.get("condition") == "service_completed_successfully"}
    return by_hand | awaited


def _committed_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    return [REPO / name for name in listed.decode().split("\0") if name and (REPO / name).is_file()]


def test_compose_file_names_the_services_the_readme_lists():
    services = set(_compose()["services"])
    assert {"db", "broker", "ckan", "api", "ingest", "migrate"} <= services
    readme = (REPO / "deploy/production/README.md").read_text()
    for name in services:
        assert f"`{name}`" in readme, f"service {name} is not documented"


def test_compose_database_is_timescaledb_ha():
    assert _compose()["services"]["db"]["image"].startswith("timescale/timescaledb-ha")


def test_compose_has_no_literal_passwords():
    text = (PRODUCTION / "compose.yaml").read_text()
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
    for folder in ("platform", "ingest", "gis", "sta", "opendata", "apps", "deploy"):
        assert not (REPO / folder / "__init__.py").exists(), folder


def test_every_long_running_service_restarts_after_a_crash():
    services = _compose()["services"]
    assert _one_shot_jobs(services) == {"migrate", "broker-accounts", "backup"}
    for name, service in services.items():
        if name not in _one_shot_jobs(services):
            assert service.get("restart") in ("unless-stopped", "always"), name


def test_every_long_running_service_has_a_healthcheck():
    services = _compose()["services"]
    for name, service in services.items():
        if name not in _one_shot_jobs(services):
            assert service.get("healthcheck", {}).get("test"), name


def test_every_mounted_path_and_build_file_exists_in_the_repository():
    services = _compose()["services"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):  # a bind mount (named volumes have plain names)
                assert (PRODUCTION / source).exists(), f"{name} mounts {source}, which is not in the repository"
        if build := service.get("build"):
            context = PRODUCTION / build["context"]
            assert context.is_dir(), name
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name


def test_the_ckan_image_installs_the_extension_from_its_real_folder():
    dockerfile = (PRODUCTION / "ckan/Dockerfile").read_text()
    (source,) = re.findall(r"^COPY (\S+) ", dockerfile, re.MULTILINE)
    assert (REPO / source / "pyproject.toml").is_file()


def test_only_the_proxy_and_the_broker_tls_listener_are_published_beyond_the_host():
    published = {name: service["ports"] for name, service in _compose()["services"].items() if service.get("ports")}
    assert published == {"proxy": ["80:80", "443:443"], "broker": ["8883:8883"], "grafana": ["127.0.0.1:3000:3000"]}


def test_the_proxy_serves_the_api_over_https_and_is_the_only_trusted_proxy():
    compose = _compose()
    caddyfile = (PRODUCTION / "caddy/Caddyfile").read_text()
    assert "reverse_proxy api:8000" in caddyfile and "reverse_proxy ckan:5000" in caddyfile
    address = compose["services"]["proxy"]["networks"]["default"]["ipv4_address"]
    assert compose["x-cityos-env"]["CITYOS_TRUSTED_PROXIES"] == address
    assert compose["x-cityos-env"]["CITYOS_PUBLIC_BASE_URL"].startswith("https://")


def test_the_broker_has_a_tls_listener_whose_files_are_never_committed():
    conf = (PRODUCTION / "mosquitto/mosquitto.conf").read_text()
    assert "listener 8883" in conf and "certfile /mosquitto/config/tls/" in conf
    ignored = (PRODUCTION / "mosquitto/tls/.gitignore").read_text().split()
    assert ignored[0] == "*"


def test_the_image_build_context_leaves_out_local_state_and_secrets():
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".cityos", ".venv", "**/node_modules", "test-artifacts", ".git", "**/*.env", "**/*.key"} <= ignored


def test_no_secret_is_an_image_build_argument_or_default():
    for dockerfile in (PRODUCTION / "Dockerfile", PRODUCTION / "ckan/Dockerfile"):
        text = dockerfile.read_text()
        baked = re.search(r"^\s*(ARG|ENV)\b.*(PASSWORD|TOKEN|SECRET)", text, re.MULTILINE | re.IGNORECASE)
        assert not baked, dockerfile
    initdb = (PRODUCTION / "initdb/10-cityos.sql").read_text()
    assert re.findall(r"login (?:createrole )?password (\S+)", initdb) == [":'cityos_password';", ":'ckan_password';"]


SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    # a literal password of 12 or more characters in a URL (placeholders hold { or $)
    "password in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^\s/:@\"'{}$]+:([^\s/@\"'{}$*]{12,})@"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
    "AWS key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
}


def test_no_committed_file_holds_a_secret():
    found = []
    for path in _committed_files():
        text = path.read_text(errors="replace")
        found += [f"{path.relative_to(REPO)}: {kind}"
                  for kind, pattern in SECRET_PATTERNS.items() if pattern.search(text)]
    assert not found


def _local_secrets() -> set[str]:
    """The values the local runtime generated (passwords, tokens) in its state folder, if there is one."""
    values: set[str] = set()
    for home in {Path(os.environ.get("CITYOS_HOME", REPO / ".cityos")), REPO / ".cityos"}:
        for name in ("secrets.env", "local.env"):
            if (home / name).is_file():
                for line in (home / name).read_text().splitlines():
                    key, _, value = line.partition("=")
                    if re.search("PASSWORD|TOKEN|SECRET", key):
                        values.add(value.strip().strip("'\""))
                    values.update(m for m in re.findall(r"://[^:/@\s]+:([^@\s]+)@", value))
    return {v for v in values if len(v) >= 12}


def test_no_committed_file_holds_a_password_or_token_of_the_local_runtime():
    secrets = _local_secrets()
    for path in _committed_files():
        text = path.read_text(errors="replace")
        assert not [s for s in secrets if s in text], path.relative_to(REPO)


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


# -- monitoring ---------------------------------------------------------------------------------------
MONITORING = PRODUCTION / "monitoring"
#: metrics of postgres-exporter (not our code) that the dashboard and rules use
EXPORTER_METRICS = {"pg_up", "pg_stat_database_numbackends", "pg_database_size_bytes", "pg_stat_database_xact_commit",
                    "pg_stat_database_xact_rollback"}


def _code_metric_names() -> set[str]:
    """Every metric name defined in the platform's code (Counter/Gauge/Histogram or a collector's family)."""
    names: set[str] = set()
    for folder in ("platform", "ingest", "gis", "opendata"):
        for path in (REPO / folder).rglob("*.py"):
            text = path.read_text()
            names.update(re.findall(r"(?:Counter|Gauge|Histogram|Summary|MetricFamily)\(\s*\"(cityos_\w+)\"", text))
    return names


def _used_metric_names() -> set[str]:
    exprs = [rule["expr"] for group in yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
             for rule in group["rules"]]
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    names = {re.sub(r"_(bucket|count|sum)$", "", n) for e in exprs for n in re.findall(r"\b(?:cityos|pg)_\w+", e)}
    return names


def test_every_metric_of_the_dashboard_and_alerts_exists():
    code = _code_metric_names()
    assert {"cityos_ingest_readings_total", "cityos_api_requests_total", "cityos_devices_silent"} <= code
    used = _used_metric_names()
    assert used - code - EXPORTER_METRICS == set()
    assert {"cityos_devices_silent", "cityos_ingest_dead_letters_total"} <= used  # the two alerts of the issue


def test_prometheus_scrapes_the_api_and_the_database_exporter_and_loads_the_rules():
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    for rule_file in config["rule_files"]:
        assert (MONITORING / rule_file).is_file()
    targets = {t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    services = _compose()["services"]
    assert {t.split(":")[0] for t in targets} <= set(services)
    assert "api:8000" in targets


def test_alert_rules_name_silent_devices_and_dead_letter_surges():
    groups = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
    rules = {r["alert"]: r for g in groups for r in g["rules"]}
    assert "cityos_devices_silent" in rules["CityosDevicesSilent"]["expr"]
    assert "cityos_ingest_dead_letters_total" in rules["CityosDeadLetterSurge"]["expr"]
    assert all(r.get("for") and r["labels"].get("severity") for r in rules.values())
