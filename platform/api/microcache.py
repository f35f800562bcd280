"""A micro-cache for anonymous open-data reads: the same URL within ``ttl`` seconds is answered from memory.

Open data is served with ``Cache-Control: max-age`` anyway (a CDN or reverse proxy may keep it
for that long); caching each process's own answers for a second or two flattens bursts of
identical requests (200 citizen apps polling the same snowplow list) without making anything
staler than its headers allow. Requests with an ``Authorization`` header (staff, households) are
never cached or answered from the cache. It sits inside the access middleware, so every request
still counts against its rate limit and quota. ``CITYOS_API_CACHE_S`` sets the time (default 2 s; 0: off, as
the test suite sets it).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

PREFIXES = ("/api/v1/sensors", "/api/v1/gis/population", "/api/v1/gis/bus-coverage", "/api/v1/gis/hotspots",
            "/api/v1/gis/snowplow-coverage", "/api/v1/gis/energy-by-district", "/ogc",
            "/sta/v1.1")  # SensorThings: anonymous answers say max-age=5 themselves
MAX_ENTRIES = 512
MAX_BODY = 8 * 1024 * 1024


#: Request headers an answer may depend on, beside the path and query (which carries ``format``).
#: Links never come from ``Host`` or forwarded headers (they use the configured base URL), so those
#: are not here; a route that starts reading another header must add it.
VARY = (b"accept",)


def cache_key(scope, headers: dict[bytes, bytes]) -> tuple[str, bytes]:
    """What identifies an answer: path, query, whether it may be gzipped, and the headers in ``VARY``."""
    gzip = b"gzip" in headers.get(b"accept-encoding", b"")
    varying = b"".join(b"#" + headers.get(name, b"") for name in VARY)
    return scope["path"], scope["query_string"] + (b"#gzip" if gzip else b"#plain") + varying


class MicroCache:
    """Pure ASGI middleware (streams are not cached: only complete 200 answers up to ``MAX_BODY``)."""

    def __init__(self, app, ttl: float):
        self.app, self.ttl = app, ttl
        self.entries: OrderedDict[tuple[str, bytes], tuple[float, list, bytes, bytes | None]] = OrderedDict()
        self.filling: dict[tuple[str, bytes], asyncio.Event] = {}

    async def _serve(self, entry, headers: dict, send) -> None:
        _, response_headers, body, etag = entry
        if etag is not None and headers.get(b"if-none-match") == etag:
            await send({"type": "http.response.start", "status": 304,
                        "headers": [h for h in response_headers if h[0] in (b"etag", b"cache-control")]})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send) -> None:
        if (self.ttl <= 0 or scope["type"] != "http" or scope["method"] != "GET"
                or not scope["path"].startswith(PREFIXES)):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if b"authorization" in headers:
            return await self.app(scope, receive, send)
        key = cache_key(scope, headers)
        entry = self.entries.get(key)
        if entry and entry[0] > time.monotonic():
            return await self._serve(entry, headers, send)
        if key in self.filling:  # another request is computing this answer: share it (no stampede)
            await self.filling[key].wait()
            if (entry := self.entries.get(key)) is not None:
                return await self._serve(entry, headers, send)
            return await self.app(scope, receive, send)
        done = self.filling[key] = asyncio.Event()
        try:
            await self.app(scope, receive, self._capture(key, send))
        finally:
            del self.filling[key]
            done.set()
        return None

    def _capture(self, key, send):
        start: dict = {}
        chunks: list[bytes] = []

        async def capture(message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body") and start.get("status") == 200:
                    body = b"".join(chunks)
                    if len(body) <= MAX_BODY:
                        etag = dict(start.get("headers", [])).get(b"etag")
                        self.entries[key] = (time.monotonic() + self.ttl, list(start.get("headers", [])), body, etag)
                        self.entries.move_to_end(key)
                        while len(self.entries) > MAX_ENTRIES:
                            self.entries.popitem(last=False)
            await send(message)

        return capture
