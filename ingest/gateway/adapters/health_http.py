"""Health adapter: a companion phone app pushes wearable readings to an authenticated HTTP endpoint on the gateway.

``POST /readings`` with ``Authorization: Bearer <token>`` and a JSON reading or ``{"batch": [...]}``
(the payload contract's ``readings`` shape: ``{"t": "...", "heart_rate_bpm": 72}``). Answers 202
once the readings are in the outbox (so the phone may forget them), 401 without the token, 422 with
the reason for a reading the contract refuses. Listens on loopback by default; standard library only.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from cityos.ingest.contract import BATCH_KEY, BATCH_KEYS
from cityos.ingest.gateway.adapters.base import Adapter, AdapterSettings, resolve
from cityos.ingest.gateway.emitter import Observation
from cityos.ingest.gateway.payload import clean_metrics, read_time, reading_problem

MAX_BODY = 1024 * 1024


class Settings(AdapterSettings):
    """``[[adapters]] type = "health_http"``."""

    DOMAIN: ClassVar[str] = "health"
    type: Literal["health_http"]
    listen: str = Field("127.0.0.1:8787", description="host:port of the endpoint.")
    token_file: Path = Field(Path("health-token"), description="File holding the phone app's bearer token.")

    def resolve_paths(self, base: Path) -> None:
        self.token_file = resolve(self.token_file, base)  # type: ignore[assignment]


class Refused(ValueError):
    """A reading the contract refuses (the message says why)."""


def observations(document: object) -> list[Observation]:
    """Readings of a pushed document; raises :class:`Refused` naming the first bad one."""
    batch = isinstance(document, dict) and BATCH_KEY in document and BATCH_KEYS.issuperset(document)
    items = document[BATCH_KEY] if batch else [document]  # type: ignore[index]  # a dict when batch
    if not isinstance(items, list) or not items:
        raise Refused("expected a reading object or {\"batch\": [...]}")
    out = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or "t" not in item:
            raise Refused(f"reading {n}: an object with t (observation time) is needed")
        try:
            t = read_time(item["t"])
        except ValueError as exc:
            raise Refused(f"reading {n}: {exc}") from None
        metrics, bad = clean_metrics("health", {k: v for k, v in item.items() if k != "t"})
        if bad:
            raise Refused(f"reading {n}: " + ", ".join(f"{k}: {v}" for k, v in bad.items()))
        if problem := reading_problem("health", metrics):
            raise Refused(f"reading {n}: {problem}")
        out.append(Observation(metrics, t))
    return out


class HealthHttpAdapter(Adapter):
    """Runs the endpoint in a thread; readings go straight into the outbox."""

    settings: Settings

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        adapter = self
        token = self.settings.token_file.read_text().strip()
        if len(token) < 16:
            raise ValueError(f"{self.settings.token_file}: the token must have at least 16 characters")

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:  # no request log lines with residents' data
                pass

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                given = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
                if not hmac.compare_digest(given.encode(), token.encode()):
                    adapter.sink.count("unauthorised")
                    return self._answer(401, {"error": "a valid bearer token is needed"})
                if self.path != "/readings":
                    return self._answer(404, {"error": "POST /readings"})
                length = int(self.headers.get("Content-Length") or 0)
                if length <= 0 or length > MAX_BODY:
                    return self._answer(413 if length > MAX_BODY else 400, {"error": "body size"})
                try:
                    batch = observations(json.loads(self.rfile.read(length)))
                except (ValueError, Refused) as exc:
                    adapter.sink.count("refused")
                    return self._answer(422, {"error": str(exc)})
                stored = adapter.sink.emit_many(batch)
                return self._answer(202, {"stored": stored})

        return Handler

    async def run(self) -> None:
        host, _, port = self.settings.listen.rpartition(":")
        server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), self._handler())
        thread = threading.Thread(target=server.serve_forever, name="health-http", daemon=True)
        thread.start()
        try:
            await asyncio.Event().wait()
        finally:
            server.shutdown()
            server.server_close()


def make(settings: Settings, sink, outbox) -> HealthHttpAdapter:
    """The registry's factory."""
    return HealthHttpAdapter(settings, sink)
