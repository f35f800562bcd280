"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from cityos.platform.db.connection import aconnect
from cityos.platform.mqtt import check_broker

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    """Always ``ok`` while the process runs; use ``/readyz`` for dependencies."""
    return {"status": "ok"}


async def _check_database(url: str) -> dict[str, object]:
    started = time.monotonic()
    try:
        async with aconnect(url, autocommit=True, timeout=2) as conn:
            await asyncio.wait_for(conn.execute("select 1"), timeout=2)
    except Exception as exc:
        return {"ok": False, "error": str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}
    return {"ok": True, "latency_ms": round((time.monotonic() - started) * 1000, 1)}


async def _check_broker(url: str) -> dict[str, object]:
    if not url:
        return {"ok": False, "error": "CITYOS_MQTT_URL is not set"}
    ok, reason = await asyncio.to_thread(check_broker, url, 2.0)
    return {"ok": ok} if ok else {"ok": False, "error": reason}


@router.get("/readyz", summary="Readiness: database and broker reachable",
            responses={503: {"description": "a dependency is unavailable"}})
async def readyz(request: Request) -> JSONResponse:
    """``200`` when the database and the broker answer, ``503`` with the failing check otherwise."""
    settings = request.app.state.settings
    database, broker = await asyncio.gather(_check_database(settings.database_url),
                                            _check_broker(settings.mqtt_url))
    ready = bool(database["ok"] and broker["ok"])
    body = {"status": "ready" if ready else "unavailable", "checks": {"database": database, "broker": broker}}
    return JSONResponse(body, status_code=200 if ready else 503)
