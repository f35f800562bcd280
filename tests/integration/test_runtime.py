"""The local runtime and the API service against the real servers."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from cityos.platform.mqtt import BrokerAddress, check_broker
from helpers import api_server, wait_for

CLI = [sys.executable, "-m", "cityos.platform.cli"]


def _local_only(stack) -> None:
    if stack.postgres.external:
        pytest.skip("the database is external (CITYOS_DATABASE_URL): the runtime does not stop it")


def test_readyz_goes_unhealthy_while_database_is_stopped_and_recovers(stack, database_url, mqtt_url):
    _local_only(stack)
    env = {"CITYOS_DATABASE_URL": database_url, "CITYOS_MQTT_URL": mqtt_url}
    with api_server(env) as base:
        assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
        stack.postgres.stop()
        try:
            resp = httpx.get(f"{base}/readyz", timeout=10)
            assert resp.status_code == 503
            assert resp.json()["checks"]["database"]["ok"] is False
            assert resp.json()["checks"]["broker"]["ok"] is True
        finally:
            stack.postgres.start()
        wait_for(lambda: httpx.get(f"{base}/readyz", timeout=10).status_code == 200, timeout=30)


def test_openapi_and_docs_are_served(database_url, mqtt_url):
    with api_server({"CITYOS_DATABASE_URL": database_url, "CITYOS_MQTT_URL": mqtt_url}) as base:
        spec = httpx.get(f"{base}/openapi.json", timeout=10).json()
        assert {"/healthz", "/readyz"} <= set(spec["paths"])
        assert "swagger" in httpx.get(f"{base}/docs", timeout=10).text.lower()


def test_second_cityos_up_changes_nothing(stack):
    _local_only(stack)
    watched = [stack.state.secrets_file, stack.state.local_env, stack.broker.folder / "dynamic-security.json",
               stack.broker.folder / "mosquitto.conf", stack.state.pidfile("api"), stack.state.pidfile("mosquitto")]
    before = {p: p.read_bytes() for p in watched}
    pg_pid = stack.postgres.running_pid()
    started = time.monotonic()
    result = subprocess.run([*CLI, "up", "--no-demo"], capture_output=True, text=True, env=os.environ, check=False)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert {p: p.read_bytes() for p in watched} == before
    assert stack.postgres.running_pid() == pg_pid
    assert elapsed < 5, f"re-run took {elapsed:.1f} s"


def test_status_reports_versions_and_timescaledb_features(stack):
    result = subprocess.run([*CLI, "status", "--json"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    import json

    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["postgres"]["version"].startswith("17")
    assert "hypertables" in rows["postgres"]["detail"]["timescaledb_features"]
    assert rows["postgres"]["detail"]["postgis_version"].startswith("3")
    assert rows["mosquitto"]["healthy"] is True


def test_broker_refuses_anonymous_clients(mqtt_url):
    address = BrokerAddress.parse(mqtt_url)
    anonymous = f"mqtt://{address.host}:{address.port}"
    ok, reason = check_broker(anonymous)
    assert not ok
    assert "refused" in reason


def test_broker_refuses_a_wrong_password(mqtt_url):
    address = BrokerAddress.parse(mqtt_url)
    ok, _ = check_broker(f"mqtt://{address.username}:wrong@{address.host}:{address.port}")
    assert not ok


def test_local_secrets_are_private(stack):
    _local_only(stack)
    for path in (stack.state.secrets_file, stack.state.local_env, stack.broker.folder / "dynamic-security.json"):
        assert path.stat().st_mode & 0o077 == 0, path


def test_a_killed_api_is_restarted_by_its_supervisor_and_status_shows_the_restart(database_url, test_broker,
                                                                                 tmp_path):
    """``kill -9`` of the API started by the runtime (own state folder, free port, the test database)."""
    import json
    import signal

    from cityos.deploy.runtime.apiserver import ApiServer
    from cityos.deploy.runtime.state import state_for
    from cityos.deploy.runtime.supervise import read_status
    from cityos.platform.settings import load_settings
    from helpers import free_port

    home, port = tmp_path / "home", free_port()
    env = {"CITYOS_HOME": str(home), "CITYOS_API_PORT": str(port), "CITYOS_DATABASE_URL": database_url,
           "CITYOS_MQTT_URL": test_broker.url, "CITYOS_CKAN_PORT": str(free_port())}
    settings = load_settings(home=home, api_port=port)
    api = ApiServer(settings, state_for(settings), env)
    api.up()
    try:
        first = read_status(api.status_file)["pid"]
        os.kill(first, signal.SIGKILL)
        started = time.monotonic()
        wait_for(lambda: (read_status(api.status_file) or {}).get("pid") not in (None, first)
                 and api._healthy(), timeout=15)
        assert time.monotonic() - started < 10
        result = subprocess.run([*CLI, "status", "--json"], capture_output=True, text=True, check=False,
                                env={**os.environ, **env}, timeout=60)
        row = next(r for r in json.loads(result.stdout) if r["name"] == "api")
        assert row["healthy"] is True
        assert row["detail"]["restarts"] == 1
        assert row["detail"]["last_exit"] == -signal.SIGKILL
    finally:
        assert api.down()
    assert not api._healthy()


def test_a_killed_ingest_worker_brings_the_ingest_service_back_whole(database_url, test_broker, tmp_path):
    """One worker of ``cityos ingest`` killed: the service stops the others and its supervisor restarts it."""
    import signal
    from pathlib import Path

    from cityos.deploy.runtime.ingestservice import IngestService
    from cityos.deploy.runtime.state import StateDir
    from cityos.deploy.runtime.supervise import read_status

    def children(pid: int) -> list[int]:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    state = StateDir(tmp_path / "home")
    state.ensure()
    ingest = IngestService(state, {"CITYOS_HOME": str(state.home), "CITYOS_DATABASE_URL": database_url,
                                   "CITYOS_MQTT_URL": test_broker.url}, workers=2)
    ingest.up()
    try:
        first = wait_for(lambda: (read_status(ingest.status_file) or {}).get("pid"), timeout=10)
        workers = wait_for(lambda: [c for c in children(first)
                                    if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()], timeout=30)
        os.kill(workers[0], signal.SIGKILL)
        status = wait_for(lambda: (s := read_status(ingest.status_file)) and s["restarts"] == 1
                          and s["state"] == "running" and s["pid"] != first and s, timeout=20)
        assert status["last_exit"] == 1
        assert ingest.status().healthy and ingest.status().detail["restarts"] == 1
        # the restarted instance resumed its own sessions
        sessions = wait_for(lambda: (s := ingest.status().detail["sessions"])["instances"] and s, timeout=20)
        assert {"cityos-ingest-0-0", "cityos-ingest-0-1"} <= set(sessions["sessions"]) and not sessions["orphaned"]
    finally:
        assert ingest.down()
