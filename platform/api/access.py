"""Access to the open API: anonymous reads at a low rate, API keys with their own rate and quota.

``X-API-Key`` (or ``?api_key=``) identifies a developer; an unknown or revoked key is refused
with 401; a caller over its rate or quota gets 429 with ``Retry-After``. One address may mint
``CITYOS_KEYS_PER_ADDRESS_PER_DAY`` keys a day, and hold ``CITYOS_LIVE_MAX_PER_ADDRESS`` live-feed
connections (``CITYOS_LIVE_MAX_TOTAL`` in all). Counters live in each API process.
"""

from __future__ import annotations

import asyncio
import re
import time
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, EmailStr, Field
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from cityos.platform.api.clientaddr import client_address, parse_networks
from cityos.platform.db.connection import connect
from cityos.platform.ratelimit import ConnectionCap, Limits, RateLimiter, create_api_key, hash_key

LIMITED_PREFIXES = ("/api/v1/sensors", "/api/v1/gis", "/ogc", "/api/v1/live", "/sta/")
LIVE_PREFIX = "/api/v1/live"
KEYS_PATH = "/api/v1/keys"
KEY_CACHE_S = 30.0
LIVE_RETRY_S = 30
#: Pages of OGC items up to this many features are cheap when they follow a first page (see ``_cost``).
PAGE_FEATURES = 100
_ITEMS = re.compile(r"^/ogc/collections/[^/]+/items$")

router = APIRouter(prefix="/api/v1/keys", tags=["access"])


class KeyRequest(BaseModel):
    """A developer asking for a key."""

    name: str = Field(min_length=2, max_length=100, examples=["除雪マップ by Code for AIZU"])
    contact: EmailStr


@router.post("", status_code=201, summary="Get an API key / APIキーの発行")
def request_key(body: KeyRequest, request: Request) -> dict:
    """Self-service: a key with the default rate (600/min) and daily quota (100,000). Shown once.
    One address may ask for ``CITYOS_KEYS_PER_ADDRESS_PER_DAY`` keys a day (10); then 429."""
    settings = request.app.state.settings
    with connect(settings.database_url, autocommit=True) as conn:
        key = create_api_key(conn, body.name, str(body.contact))
    return {"api_key": key, "rate_per_minute": 600, "daily_quota": 100_000,
            "usage": "send it as the X-API-Key header"}


class AccessMiddleware:
    """Identifies the caller (by key, else by address) and enforces its rate and quota, the daily limit on
    minting keys, and the cap on open live-feed connections (pure ASGI: no per-request task or stream for
    the routes it lets through).

    The caller's address comes from :func:`cityos.platform.api.clientaddr.client_address` (forwarded
    headers only from ``CITYOS_TRUSTED_PROXIES``) and is left in ``scope["state"]["client_addr"]`` for
    the audit log; ``scope["state"]["caller"]`` says ``"key"`` or ``"anonymous"``."""

    def __init__(self, app, settings):
        self.app = app
        self.settings = settings
        self.proxies = parse_networks(settings.trusted_proxies)
        self.limiter = RateLimiter(window_s=settings.rate_window_s)
        self.minting = RateLimiter()
        self.live = ConnectionCap(settings.live_max_per_address, settings.live_max_total)
        self._keys: dict[str, tuple[float, Limits | None]] = {}

    def _limits_for_key(self, key: str) -> Limits | None:
        cached = self._keys.get(key)
        if cached and time.monotonic() - cached[0] < KEY_CACHE_S:
            return cached[1]
        with connect(self.settings.database_url, autocommit=True, timeout=3) as conn:
            row = conn.execute("select rate_per_minute, daily_quota from core.api_keys where key_hash = %s "
                               "and revoked_at is null", (hash_key(key),)).fetchone()
        limits = Limits(row[0], row[1]) if row else None
        self._keys[key] = (time.monotonic(), limits)
        return limits

    def _cost(self, scope) -> float:
        """What this request counts: a further page of OGC items (``offset`` > 0, at most ``PAGE_FEATURES``
        features) counts ``ogc_page_cost``, so a client paging 10 features at a time (GDAL) reads a whole
        layer within the anonymous rate; everything else counts 1."""
        if not _ITEMS.match(scope["path"]):
            return 1.0
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        try:
            offset, limit = int(query.get("offset", ["0"])[0]), int(query.get("limit", ["100"])[0])
        except ValueError:
            return 1.0
        return self.settings.ogc_page_cost if offset > 0 and 0 < limit <= PAGE_FEATURES else 1.0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        address = client_address(scope, self.proxies)
        state = scope.setdefault("state", {})
        state["client_addr"] = address
        path, method = scope["path"], scope.get("method", "GET")
        if method == "OPTIONS":
            return await self.app(scope, receive, send)
        if path == KEYS_PATH and method == "POST":
            limits = Limits(self.settings.keys_per_address_per_day, self.settings.keys_per_address_per_day)
            if (retry_after := self.minting.check("ip:" + address, limits)) is not None:
                return await _refuse(scope, receive, send, 429, "too many API keys from this address today",
                                     retry_after)
            return await self.app(scope, receive, send)
        if not path.startswith(LIMITED_PREFIXES):
            return await self.app(scope, receive, send)
        request = HTTPConnection(scope)
        key = request.headers.get("x-api-key") or request.query_params.get("api_key")
        if key:
            key_limits = await asyncio.to_thread(self._limits_for_key, key)
            if key_limits is None:
                return await _refuse(scope, receive, send, 401, "unknown or revoked API key")
            limits = key_limits
            caller = "key:" + hash_key(key)
            state["caller"] = "key"
        else:
            limits = Limits(self.settings.anonymous_rate_per_minute, self.settings.anonymous_daily_quota)
            caller = "ip:" + address
            state["caller"] = "anonymous"
        retry_after = self.limiter.check(caller, limits, cost=self._cost(scope))
        if retry_after is not None:
            return await _refuse(scope, receive, send, 429, "rate limit or quota exceeded; get an API key for more",
                                 retry_after)
        if not path.startswith(LIVE_PREFIX):
            return await self.app(scope, receive, send)
        if (reason := self.live.acquire(address)) is not None:
            return await _refuse(scope, receive, send, 429, reason + "; close one and retry", LIVE_RETRY_S)
        try:
            return await self.app(scope, receive, send)
        finally:
            self.live.release(address)


async def _refuse(scope, receive, send, status: int, detail: str, retry_after: int | None = None) -> None:
    """An HTTP error answer; for a WebSocket the same as a denial response where the server supports it
    (uvicorn does), else a close with 1013 (try again later) and the reason."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    response = JSONResponse({"detail": detail}, status_code=status, headers=headers)
    if scope["type"] == "http":
        return await response(scope, receive, send)
    websocket = WebSocket(scope, receive, send)
    if "websocket.http.response" in scope.get("extensions", {}):
        return await websocket.send_denial_response(response)
    await websocket.close(code=1013, reason=detail[:120])
    return None
