"""The FastAPI application: mounts every component's router by name, in this one place."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator

import psycopg
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse

from cityos.platform.api.access import AccessMiddleware
from cityos.platform.api.apps import NoVaryOrigin, mount_apps
from cityos.platform.api.live import start_live_feed
from cityos.platform.api.metrics import RequestMetrics
from cityos.platform.api.microcache import MicroCache
from cityos.platform.api.security import SecurityHeaders, mount_docs
from cityos.platform.api.series_rows import series_answers
from cityos.platform.api.snapshots import Snapshots
from cityos.platform.db import pool as pools
from cityos.platform.logs import configure_logging
from cityos.platform.metrics import enable_multiprocess, metrics_dir
from cityos.platform.settings import Settings, get_settings

log = logging.getLogger(__name__)

#: "module:attribute" of each router; a component adds its API by adding one line here.
ROUTERS: list[str] = [
    "cityos.platform.api.health:router",
    "cityos.platform.api.metrics:router",
    "cityos.platform.api.consent:router",
    "cityos.platform.api.access:router",
    "cityos.platform.api.sensors:router",
    "cityos.ingest.api:router",
    "cityos.gis.ogc:router",
    "cityos.gis.api:router",
    "cityos.gis.energy_api:router",
    "cityos.gis.hydrant_reports:router",
    "cityos.opendata.api:router",
    "cityos.platform.api.live:router",
    "cityos.gis.app_data:router",
    "cityos.sta.routes:router",
    "cityos.sta.create:router",
    "cityos.platform.api.apps:router",
    "cityos.ingest.ngsild.api:router",
]

#: "module:function" of each component's background service, started with the app as
#: ``function(settings, loop)`` (returns an object with ``stop()``, or None).
SERVICES: list[str] = [
    "cityos.ingest.ngsild.notifier:start",
]


def _load(spec: str):
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


async def _maintenance_loop(settings: Settings) -> None:
    """Run roll-ups and retention periodically (Apache-only TimescaleDB has no job scheduler)."""
    from cityos.platform.db.maintenance import run_maintenance

    while True:
        try:
            await asyncio.to_thread(run_maintenance, settings.database_url, settings.retention_days_raw,
                                    timezone=settings.timezone)
        except Exception:
            log.exception("maintenance pass failed")
        await asyncio.sleep(settings.maintenance_interval_s)


def create_app(settings: Settings | None = None, *, maintenance: bool = True) -> FastAPI:
    """Build the API application for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    enable_multiprocess(metrics_dir(settings.home))

    database = pools.Database(settings, name="cityos-api")  # this app's pool, from this app's settings

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pools.install(database)  # every connect() of this process now lends from it
        if settings.database_url:
            await database.open_async()
        task = asyncio.create_task(_maintenance_loop(settings)) if maintenance else None
        live = start_live_feed(settings, asyncio.get_running_loop())
        snapshots = app.state.latest_snapshots = Snapshots(settings.database_url).start() \
            if settings.database_url else None
        series = app.state.series_answers = series_answers(settings.database_url) \
            if settings.database_url and settings.series_rollups else None  # kept answers are rolled up
        services = [_load(spec)(settings, asyncio.get_running_loop()) for spec in SERVICES]
        log.info("api started", extra={"url": settings.api_url})
        yield
        for service in services:
            if service:
                service.stop()
        if live:
            live.stop()
        if snapshots:
            snapshots.stop()
        if series:
            series.stop()
        if task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await database.aclose()
        pools.install(None)

    app = FastAPI(
        title="cityos API",
        version="1",
        summary="City as Platform: telemetry, GIS layers and open data of the city",
        lifespan=lifespan,
        docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None,  # /docs with its CSP: mount_docs
    )
    app.state.settings = settings
    app.state.database = database
    # Open data may be read from any web page; writes need a token, not a cookie, so this is safe.
    # Innermost first: gzip for clients that accept it, the micro-cache (keeps compressed answers), then access.
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=5)  # 9 cost ~3x the CPU for ~3 % less
    app.add_middleware(MicroCache, ttl=settings.api_cache_s)  # inside the access middleware: requests still count
    app.add_middleware(AccessMiddleware, settings=settings)
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "HEAD", "OPTIONS"],
                       allow_headers=["Authorization", "If-None-Match", "X-API-Key"],
                       expose_headers=["ETag", "Retry-After"])
    app.add_middleware(NoVaryOrigin)  # the apps' files are the same for every origin (service-worker cache)
    app.add_middleware(SecurityHeaders, basemap_tiles=settings.basemap_tiles)  # on every answer
    app.add_middleware(RequestMetrics)  # outermost: counts every answer, refusals included
    for spec in ROUTERS:
        app.include_router(_load(spec))
    mount_docs(app)
    mount_apps(app)
    app.add_exception_handler(psycopg.DataError, _invalid_text)
    app.add_exception_handler(UnicodeEncodeError, _invalid_text)
    return app


async def _invalid_text(_request, exc: Exception) -> JSONResponse:
    """Text the database cannot store (NUL characters, lone surrogates) is the client's error, not ours."""
    detail = [{"loc": ["body"], "msg": "text with characters that cannot be stored (NUL or lone surrogates)",
               "type": f"value_error.{type(exc).__name__}"}]
    return JSONResponse({"detail": detail}, status_code=422)
