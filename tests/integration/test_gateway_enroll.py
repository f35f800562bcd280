"""``cityos gateway enroll``: a one-time token from the city becomes the device's credentials (mode 600)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import psycopg

from cityos.ingest.devices import add_device, create_enrolment_token


def _enroll(api: str, token: str, config) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cityos.ingest.gateway", "enroll", "--api", api, "--token", token,
                           "--config", str(config)], capture_output=True, text=True)


def test_enrolment_stores_credentials_with_mode_600_and_the_token_works_once(api, database_url, tmp_path):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from core.devices where device_id = 'hems-enrol-01'")
        add_device(conn, "hems-enrol-01", "hems")
        token = create_enrolment_token(conn, "hems-enrol-01")
    config = tmp_path / "gateway.toml"
    config.write_text('device_id = "hems-enrol-01"\nbroker_url = "mqtt://127.0.0.1:1883"\n')
    first = _enroll(api, token, config)
    assert first.returncode == 0, first.stderr
    credentials = tmp_path / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    stored = json.loads(credentials.read_text())
    assert stored["mqtt_username"] == "hems-enrol-01" and len(stored["mqtt_password"]) >= 20
    again = _enroll(api, token, config)
    assert again.returncode == 1 and "used or expired" in again.stderr
