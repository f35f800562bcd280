"""``/metrics``: Prometheus exposition of this host's platform processes, the API's requests, and the
state of the city's devices read from the database at scrape time.

Metric names (the Prometheus rules and the Grafana dashboard in deploy/production/monitoring use them):
- ``cityos_api_requests_total{method,route,status}`` and ``cityos_api_request_seconds{route}`` (this module);
- ``cityos_ingest_*`` of the ingest workers (ingest/metrics.py, aggregated from the shared metric files);
- ``cityos_database_up``, ``cityos_devices_active{domain}``, ``cityos_devices_silent{domain}`` (active devices
  with no reading for ``CITYOS_SILENT_DEVICE_S``) and ``cityos_dead_letters_recent`` (dead letters of the
  last hour, from every ingest host): computed per scrape by one short query.
"""

from __future__ import annotations

import functools
import os
import time

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import Response

from cityos.platform.db.connection import connect

router = APIRouter(tags=["operations"])

DEVICES_SQL = """
select d.domain, count(*) as active,
       count(*) filter (where coalesce(l.newest, '-infinity') < now() - make_interval(secs => %s)) as silent
from core.devices d
left join (select device_id, max(time) as newest from telemetry.latest_values group by device_id) l
       using (device_id)
where d.revoked_at is null
group by d.domain
"""
DEAD_LETTERS_SQL = "select count(*) from core.dead_letters where received_at > now() - interval '1 hour'"


@functools.cache
def _request_metrics():
    """Created on first use: after enable_multiprocess() has pointed prometheus_client at the shared folder."""
    from prometheus_client import Counter, Histogram

    return (Counter("cityos_api_requests_total", "HTTP requests answered", ["method", "route", "status"]),
            Histogram("cityos_api_request_seconds", "Time to answer an HTTP request", ["route"],
                      buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)))


class RequestMetrics:
    """Pure ASGI middleware: counts and times every HTTP answer by its route template (bounded labels:
    ``/v1/devices/{device_id}``, never the concrete path; unmatched paths count as ``other``)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.monotonic()
        status = {"code": 500}

        async def record(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            route = getattr(scope.get("route"), "path", None) or "other"
            requests, seconds = _request_metrics()
            requests.labels(scope["method"], route, str(status["code"])).inc()
            seconds.labels(route).observe(time.monotonic() - started)


class CityCollector:
    """Gauges read from the database at scrape time (cheap: one grouped scan of the device registry)."""

    def __init__(self, database_url: str, silent_after_s: float):
        self.database_url = database_url
        self.silent_after_s = silent_after_s

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("cityos_database_up", "1 when the platform database answered this scrape")
        active = GaugeMetricFamily("cityos_devices_active", "Registered, not revoked devices", labels=["domain"])
        silent = GaugeMetricFamily("cityos_devices_silent", "Active devices without a reading for "
                                   "CITYOS_SILENT_DEVICE_S", labels=["domain"])
        dead = GaugeMetricFamily("cityos_dead_letters_recent", "Dead letters stored in the last hour (all hosts)")
        try:
            with connect(self.database_url, timeout=3) as conn:  # one transaction: the limit ends with it
                conn.execute("set local statement_timeout = '3s'")
                for domain, count, quiet in conn.execute(DEVICES_SQL, (self.silent_after_s,)):
                    active.add_metric([domain], count)
                    silent.add_metric([domain], quiet)
                dead.add_metric([], conn.execute(DEAD_LETTERS_SQL).fetchone()[0])
            up.add_metric([], 1)
        except psycopg.Error:
            up.add_metric([], 0)
            return [up]
        return [up, active, silent, dead]


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Counters and histograms of the API and the ingest workers (multiprocess aggregation) and the
    device and dead-letter gauges of the database."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    settings = request.app.state.settings
    if settings.database_url:
        registry.register(CityCollector(settings.database_url, settings.silent_device_s))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
