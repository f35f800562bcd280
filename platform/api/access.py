"""Access to the open API: anonymous reads at a low rate, API keys with their own rate and quota.

``X-API-Key`` (or ``?api_key=``) identifies a developer; an unknown or revoked key is refused
with 401; a caller over its rate or quota gets 429 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import time

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, EmailStr, Field

from cityos.platform.ratelimit import Limits, RateLimiter, create_api_key, hash_key

LIMITED_PREFIXES = ("/api/v1/sensors", "/api/v1/gis", "/ogc")
KEY_CACHE_S = 30.0

router = APIRouter(prefix="/api/v1/keys", tags=["access"])


class KeyRequest(BaseModel):
    """A developer asking for a key."""

    name: str = Field(min_length=2, max_length=100, examples=["除雪マップ by Code for AIZU"])
    contact: EmailStr


@router.post("", status_code=201, summary="Get an API key / APIキーの発行")
def request_key(body: KeyRequest, request: Request) -> dict:
    """Self-service: a key with the default rate (600/min) and daily quota (100,000). Shown once."""
    settings = request.app.state.settings
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        key = create_api_key(conn, body.name, str(body.contact))
    return {"api_key": key, "rate_per_minute": 600, "daily_quota": 100_000,
            "usage": "send it as the X-API-Key header"}


class AccessMiddleware:
    """Identifies the caller of open-data routes and enforces its rate and quota (pure ASGI: no per-request
    task or stream for the routes it lets through)."""

    def __init__(self, app, settings):
        self.app = app
        self.settings = settings
        self.limiter = RateLimiter()
        self._keys: dict[str, tuple[float, Limits | None]] = {}

    def _limits_for_key(self, key: str) -> Limits | None:
        cached = self._keys.get(key)
        if cached and time.monotonic() - cached[0] < KEY_CACHE_S:
            return cached[1]
        with psycopg.connect(self.settings.database_url, autocommit=True, connect_timeout=3) as conn:
            row = conn.execute("select rate_per_minute, daily_quota from core.api_keys where key_hash = %s "
                               "and revoked_at is null", (hash_key(key),)).fetchone()
        limits = Limits(row[0], row[1]) if row else None
        self._keys[key] = (time.monotonic(), limits)
        return limits

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] != "http" or scope["method"] == "OPTIONS"
                or not scope["path"].startswith(LIMITED_PREFIXES)):
            return await self.app(scope, receive, send)
        request = Request(scope)
        key = request.headers.get("x-api-key") or request.query_params.get("api_key")
        if key:
            limits = await asyncio.to_thread(self._limits_for_key, key)
            if limits is None:
                return await JSONResponse({"detail": "unknown or revoked API key"}, status_code=401)(
                    scope, receive, send)
            caller = "key:" + hash_key(key)
        else:
            limits = Limits(self.settings.anonymous_rate_per_minute, self.settings.anonymous_daily_quota)
            caller = "ip:" + (request.client.host if request.client else "unknown")
        retry_after = self.limiter.check(caller, limits)
        if retry_after is not None:
            response = JSONResponse({"detail": "rate limit or quota exceeded; get an API key for more"},
                                    status_code=429, headers={"Retry-After": str(retry_after)})
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)
