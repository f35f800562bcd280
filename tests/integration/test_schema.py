"""Schemathesis against the API's own OpenAPI schema: no 5xx, responses conform to the schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg

from cityos.platform.auth import create_token

CHECKS = "not_a_server_error,response_schema_conformance"
EXCLUDE = "/api/v1/live|/metrics"  # endless event streams and the Prometheus text format


#: The shared API (tests/conftest.py), with the rate limits lifted for the fuzzer's thousands of requests.
API_ENV = {"CITYOS_ANONYMOUS_RATE_PER_MINUTE": "100000", "CITYOS_ANONYMOUS_DAILY_QUOTA": "10000000"}


def _run(api: str, *extra: str) -> subprocess.CompletedProcess:
    cli = Path(sys.executable).with_name("schemathesis")
    return subprocess.run([str(cli), "run", f"{api}/openapi.json", "--max-examples", "10", "--checks", CHECKS,
                           "--exclude-path-regex", EXCLUDE, "--seed", "1", *extra],
                          capture_output=True, text=True, timeout=600, check=False)


def test_anonymous_calls_never_fail_on_the_server_side_and_conform(api):
    result = _run(api)
    assert result.returncode == 0, result.stdout[-4000:]


def test_staff_calls_never_fail_on_the_server_side_and_conform(api, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        token = create_token(conn, "schemathesis", ["admin"])
    result = _run(api, "--header", f"Authorization: Bearer {token}")
    assert result.returncode == 0, result.stdout[-4000:]
