"""Live feeds for public streams, as Server-Sent Events and WebSocket.

- Snowplow positions as they reach the broker: each API process holds one MQTT subscription to
  vehicle readings and fans them out to its clients; only devices that are public snowplows in the
  registry are forwarded.
- Household electricity aggregated per district (and the whole city), every ``interval_s``: the
  latest power of HEMS homes whose owners consented to open data, averaged; districts with fewer
  than k such homes are blank. No individual home is ever sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator

import psycopg
from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from cityos.platform.mqtt import BrokerAddress, new_client
from cityos.platform.public_data import energy_now, position_event, public_snowplows, snowplow_snapshot

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
                    self._public = public_snowplows(self.settings.database_url)
                except psycopg.Error:
                    log.warning("live feed cannot refresh the device list")
                self._loaded = time.monotonic()
            return self._public

    def _on_message(self, _c, _u, msg) -> None:
        device_id = msg.topic.split("/")[3]
        if not self.queues or device_id not in self.public_snowplows():
            return
        if (event := position_event(device_id, msg.payload)) is None:
            return
        for queue in list(self.queues):
            self.loop.call_soon_threadsafe(queue.put_nowait, event)


def start_live_feed(settings, loop: asyncio.AbstractEventLoop) -> LiveFeed | None:
    """Start this process's feed (None without a broker)."""
    global _feed
    if not settings.mqtt_url:
        return None
    _feed = LiveFeed(settings, loop)
    return _feed


async def _snowplow_events(database_url: str) -> AsyncIterator[tuple[str, object] | None]:
    """("snapshot", every snowplow), then ("position", one) per message; None every 15 s of silence."""
    queue: asyncio.Queue = asyncio.Queue(maxsize=10_000)
    snapshot = await asyncio.to_thread(snowplow_snapshot, database_url)
    if _feed is not None:
        _feed.queues.add(queue)
    try:
        yield "snapshot", snapshot
        while True:
            try:
                yield "position", await asyncio.wait_for(queue.get(), timeout=15)
            except TimeoutError:
                yield None
    finally:
        if _feed is not None:
            _feed.queues.discard(queue)


async def _energy_events(database_url: str, k: int, interval_s: float) -> AsyncIterator[tuple[str, object]]:
    while True:
        yield "energy", await asyncio.to_thread(energy_now, database_url, k)
        await asyncio.sleep(interval_s)


def _sse(events: AsyncIterator, request: Request) -> StreamingResponse:
    async def stream() -> AsyncIterator[str]:
        async for item in events:
            if await request.is_disconnected():
                break
            if item is None:
                yield ": keep-alive\n\n"
                continue
            name, data = item
            yield f"event: {name}\ndata: {json.dumps(data)}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _websocket(websocket: WebSocket, events: AsyncIterator) -> None:
    """Send ``events`` until the client goes; its leaving is noticed at once (not at the next event, which
    may be an hour away), so its slot under the live-connection cap is freed at once."""
    await websocket.accept()

    async def pump() -> None:
        async for item in events:
            if item is None:
                await websocket.send_json({"event": "keep-alive"})
                continue
            name, data = item
            await websocket.send_json({"event": name, "data": data})

    async def until_disconnect() -> None:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass

    tasks = [asyncio.create_task(pump()), asyncio.create_task(until_disconnect())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
        await events.aclose()


@router.get("/snowplows", summary="Live snowplow positions (Server-Sent Events) / 除雪車の現在位置")
async def snowplows(request: Request) -> StreamingResponse:
    """An event stream: a ``snapshot`` event with every snowplow, then a ``position`` event per message."""
    return _sse(_snowplow_events(request.app.state.settings.database_url), request)


@router.websocket("/snowplows/ws")
async def snowplows_ws(websocket: WebSocket) -> None:
    """The same as ``/snowplows`` over a WebSocket: JSON messages ``{"event": "snapshot"|"position", "data": ...}``."""
    await _websocket(websocket, _snowplow_events(websocket.app.state.settings.database_url))


@router.get("/energy", summary="Household electricity per district, live (Server-Sent Events) / 地区別電力（速報）")
async def energy(request: Request, interval_s: float = Query(60, ge=1, le=3600)) -> StreamingResponse:
    """An ``energy`` event every ``interval_s``: average power per opted-in home per district and for the city
    (districts with fewer than k homes blank)."""
    settings = request.app.state.settings
    return _sse(_energy_events(settings.database_url, settings.k_anonymity, interval_s), request)


@router.websocket("/energy/ws")
async def energy_ws(websocket: WebSocket, interval_s: float = Query(60, ge=1, le=3600)) -> None:
    """The same as ``/energy`` over a WebSocket."""
    settings = websocket.app.state.settings
    await _websocket(websocket, _energy_events(settings.database_url, settings.k_anonymity, interval_s))
