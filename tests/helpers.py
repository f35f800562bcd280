"""Small helpers shared by tests: free ports and API servers run as real processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import NoReturn

import httpx


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def api_server(env: dict[str, str], timeout: float = 30.0, port: int | None = None) -> Iterator[str]:
    """Run the API service (uvicorn, a real process) with ``env``; yield its base URL.

    ``port`` (default: a free one) lets a test stop a server and start it again at the same origin."""
    port = port or free_port()
    full_env = {**os.environ, **env, "CITYOS_API_PORT": str(port), "CITYOS_LOG_JSON": "true"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "cityos.platform.api.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--no-proxy-headers"],
        env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                raise RuntimeError(f"API server did not start:\n{out}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def hours_ago(hours: float) -> datetime:
    """The whole second ``hours`` before now (UTC).

    Readings that pass through a rule with a window relative to now (ingest accepts 30 days back and
    5 minutes ahead) take their times from here, never from a fixed date, so the suite passes on any day."""
    return (datetime.now(UTC) - timedelta(hours=hours)).replace(microsecond=0)


def wait_for(check, timeout: float, interval: float = 0.2, message=None):
    """Poll ``check()`` until it returns a truthy value; return it (AssertionError on timeout).

    ``message``, a callable, describes the state on failure."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = message() if message else f"last value {value!r}"
            raise AssertionError(f"condition not met within {timeout} s: {detail}")
        time.sleep(interval)


def run_async(coroutine):
    """``asyncio.run(coroutine)`` in a thread of its own (the browser tests leave an event loop in this one)."""
    import asyncio
    import threading

    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


def create_database(settings, name: str) -> str:
    """A fresh, migrated database ``name`` on the platform's server, owned by the platform's role; its URL."""
    import psycopg
    from psycopg import sql

    from cityos.platform.db.migrate import migrate

    owner = settings.database_url.split("://", 1)[1].split(":", 1)[0]
    with psycopg.connect(settings.admin_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(name), sql.Identifier(owner)))
    with psycopg.connect(_with_database(settings.admin_database_url, name), autocommit=True) as conn:
        conn.execute("create extension if not exists timescaledb")
        conn.execute("create extension if not exists postgis")
    url = _with_database(settings.database_url, name)
    migrate(url)
    return url


def wait_js(page, expression: str, timeout: float) -> object:
    """Poll ``expression`` in the page until it is truthy (``timeout`` in ms); its value.

    Playwright's ``wait_for_function`` evaluates its predicate with ``eval`` inside the page, which the
    apps' Content-Security-Policy (rightly) refuses; ``page.evaluate`` goes through the debugger
    protocol, which the policy does not govern."""
    import time

    deadline = time.monotonic() + timeout / 1000
    while True:
        try:
            value = page.evaluate(expression)
        except Exception as exc:  # a navigation in between destroys the context: try again
            if "context was destroyed" not in str(exc) and "navigat" not in str(exc):
                raise
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{expression!r} not true within {timeout} ms")
        time.sleep(0.05)


#: Set to 1 on a developer machine that lacks a server to skip its tests; CI never sets it, so there a
#: missing server fails the run instead of passing it quietly.
ALLOW_SKIP = "CITYOS_TESTS_ALLOW_SKIP"


def missing(reason: str) -> NoReturn:
    """A server (or tool) the test needs is not there: fail, or skip where ``CITYOS_TESTS_ALLOW_SKIP=1``."""
    import pytest

    if os.environ.get(ALLOW_SKIP) == "1":
        pytest.skip(reason)
    pytest.fail(f"{reason} (set {ALLOW_SKIP}=1 to skip instead; CI never does)")


def client_python(home: str, requirement: str) -> str:
    """Python of a virtual environment holding ``requirement`` (``name==version``) from PyPI, for a client
    library whose pins clash with the platform's; built once under ``home``/clients, then reused."""
    from pathlib import Path

    venv = Path(home) / "clients" / requirement.replace("==", "-")
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", requirement],
                       check=True)
        (venv / ".complete").touch()
    return str(python)
