"""The open-data micro-cache: same anonymous GET within the TTL served from memory; personal requests never."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from cityos.platform.api.microcache import MicroCache
from helpers import run_async


def _client(ttl: float) -> tuple[TestClient, list[int]]:
    calls: list[int] = []

    async def latest(request) -> JSONResponse:
        calls.append(1)
        return JSONResponse({"n": len(calls)}, headers={"ETag": '"v1"'})

    app = Starlette(routes=[Route("/api/v1/sensors/latest", latest), Route("/other", latest)])
    return TestClient(MicroCache(app, ttl=ttl)), calls


def test_a_repeated_anonymous_read_is_served_from_memory():
    client, calls = _client(ttl=60)
    assert client.get("/api/v1/sensors/latest").json() == client.get("/api/v1/sensors/latest").json() == {"n": 1}
    assert len(calls) == 1


def test_requests_with_credentials_always_reach_the_service():
    client, _ = _client(ttl=60)
    client.get("/api/v1/sensors/latest")
    assert client.get("/api/v1/sensors/latest", headers={"Authorization": "Bearer x"}).json() == {"n": 2}


def test_a_current_etag_gets_304_from_the_cache():
    client, calls = _client(ttl=60)
    client.get("/api/v1/sensors/latest")
    assert client.get("/api/v1/sensors/latest", headers={"If-None-Match": '"v1"'}).status_code == 304
    assert len(calls) == 1


def test_other_paths_and_a_zero_ttl_are_never_cached():
    client, calls = _client(ttl=60)
    client.get("/other")
    client.get("/other")
    off, off_calls = _client(ttl=0)
    off.get("/api/v1/sensors/latest")
    off.get("/api/v1/sensors/latest")
    assert len(calls) == 2 and len(off_calls) == 2


def test_concurrent_misses_compute_the_answer_once():
    import asyncio

    import httpx

    calls: list[int] = []

    async def slow(request) -> JSONResponse:
        calls.append(1)
        await asyncio.sleep(0.1)
        return JSONResponse({"n": len(calls)})

    app = MicroCache(Starlette(routes=[Route("/api/v1/sensors/latest", slow)]), ttl=60)

    async def burst() -> list[dict]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            answers = await asyncio.gather(*[client.get("/api/v1/sensors/latest") for _ in range(20)])
        return [a.json() for a in answers]

    assert run_async(burst()) == [{"n": 1}] * 20
    assert len(calls) == 1


def test_answers_for_different_accept_or_encoding_are_kept_apart():
    client, calls = _client(ttl=60)
    client.get("/api/v1/sensors/latest", headers={"Accept": "application/json", "Accept-Encoding": "gzip"})
    client.get("/api/v1/sensors/latest", headers={"Accept": "text/csv", "Accept-Encoding": "gzip"})
    client.get("/api/v1/sensors/latest", headers={"Accept": "text/csv", "Accept-Encoding": "identity"})
    assert len(calls) == 3


def test_the_host_header_does_not_split_the_cache():
    client, calls = _client(ttl=60)
    client.get("/api/v1/sensors/latest", headers={"Host": "evil.example"})
    client.get("/api/v1/sensors/latest")
    assert len(calls) == 1
