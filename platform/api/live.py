"""Live feeds: snowplow positions pushed to browsers (Server-Sent Events) as they reach the broker.

Each API process holds one MQTT subscription to vehicle readings and fans them out to its SSE
clients; only devices that are public snowplows in the registry are forwarded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from cityos.platform.mqtt import BrokerAddress, new_client

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/live", tags=["live feeds"])
REFRESH_S = 10.0

_feed: LiveFeed | None = None


class LiveFeed:
    """Fan-out of public snowplow positions from MQTT to asyncio queues."""

    def __init__(self, settings, loop: asyncio.AbstractEventLoop):
        self.settings = settings
        self.loop = loop
        self.queues: set[asyncio.Queue] = set()
        self._public: set[str] = set()
        self._loaded = 0.0
        self._lock = threading.Lock()
        address = BrokerAddress.parse(settings.mqtt_url)
        self.client = new_client(address, "")
        self.client.on_connect = lambda c, *a: c.subscribe("cityos/v1/vehicle/+/readings", qos=0)
        self.client.on_message = self._on_message
        self.client.connect_async(address.host, address.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def public_snowplows(self) -> set[str]:
        with self._lock:
            if time.monotonic() - self._loaded > REFRESH_S:
                try:
                    with psycopg.connect(self.settings.database_url, connect_timeout=3) as conn:
                        self._public = {r[0] for r in conn.execute(
                            "select device_id from core.devices where public and kind = 'snowplow' "
                            "and revoked_at is null").fetchall()}
                except psycopg.Error:
                    log.warning("live feed cannot refresh the device list")
                self._loaded = time.monotonic()
            return self._public

    def _on_message(self, _c, _u, msg) -> None:
        device_id = msg.topic.split("/")[3]
        if not self.queues or device_id not in self.public_snowplows():
            return
        try:
            doc = json.loads(msg.payload)
            reading = doc["batch"][-1] if isinstance(doc, dict) and "batch" in doc else doc
            event = {"device_id": device_id, "t": reading["t"], "lat": float(reading["lat"]),
                     "lon": float(reading["lon"]), "speed_kmh": reading.get("speed_kmh"),
                     "heading_deg": reading.get("heading_deg"), "blade_down": reading.get("blade_down")}
        except (ValueError, KeyError, TypeError, IndexError):
            return  # ingest dead-letters it; the live map just skips it
        for queue in list(self.queues):
            self.loop.call_soon_threadsafe(queue.put_nowait, event)


def start_live_feed(settings, loop: asyncio.AbstractEventLoop) -> LiveFeed | None:
    """Start this process's feed (None without a broker)."""
    global _feed
    if not settings.mqtt_url:
        return None
    _feed = LiveFeed(settings, loop)
    return _feed


def _snapshot(database_url: str) -> list[dict]:
    with psycopg.connect(database_url, connect_timeout=3) as conn:
        rows = conn.execute("select device_id, time, st_y(geom), st_x(geom), speed_kmh, heading_deg, blade_down "
                            "from gis.snowplow_positions").fetchall()
    return [{"device_id": r[0], "t": r[1].isoformat(), "lat": r[2], "lon": r[3], "speed_kmh": r[4],
             "heading_deg": r[5], "blade_down": r[6]} for r in rows]


@router.get("/snowplows", summary="Live snowplow positions (Server-Sent Events) / 除雪車の現在位置")
async def snowplows(request: Request) -> StreamingResponse:
    """An event stream: a ``snapshot`` event with every snowplow, then a ``position`` event per message."""
    queue: asyncio.Queue = asyncio.Queue(maxsize=10_000)
    snapshot = await asyncio.to_thread(_snapshot, request.app.state.settings.database_url)

    async def events() -> AsyncIterator[str]:
        if _feed is not None:
            _feed.queues.add(queue)
        try:
            yield f"event: snapshot\ndata: {json.dumps(snapshot)}\n\n"
            while not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=15)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"event: position\ndata: {json.dumps(event)}\n\n"
        finally:
            if _feed is not None:
                _feed.queues.discard(queue)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
