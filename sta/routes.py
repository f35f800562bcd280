"""The SensorThings API 1.1 routes under ``/sta/v1.1`` (read; Observations are also created here: see
:mod:`cityos.sta.create`).

Anonymous callers read public devices only. A bearer token with the ``sta:read`` scope (staff) reads the
city's non-public vehicles and sensors too; each such call is written to the audit log, like every refused
token. Query options that cannot be read, or that this service does not offer, are answered with 400 and
a message.
"""

from __future__ import annotations

import asyncio
import re

import orjson
import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from psycopg_pool import AsyncConnectionPool

from cityos.platform.auth import Principal, audit, caller_address, hash_token, lookup_token, request_detail
from cityos.sta.entities import ENTITY_SETS, Context, EntitySet
from cityos.sta.filter import QueryError
from cityos.sta.options import Options, parse_options
from cityos.sta.read import PREFIX, Reader, key_columns, next_link

router = APIRouter(prefix=PREFIX, tags=["SensorThings API"])

STAFF_SCOPE = "sta:read"
#: Longest a single read may run in the database.
STATEMENT_TIMEOUT_MS = 10_000
#: Database connections each API process keeps for SensorThings reads.
POOL_SIZE = 8
_pools: dict[tuple[str, asyncio.AbstractEventLoop], AsyncConnectionPool] = {}
_QUOTED = re.compile(r"'((?:[^']|'')*)'")


class Refusal(Exception):
    """An answer other than 200 (status and message)."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


async def pooled(database_url: str) -> AsyncConnectionPool:
    """This process's pool for ``database_url`` in the running event loop (autocommit, reads bounded by
    :data:`STATEMENT_TIMEOUT_MS`): a page costs a query, not a new database session. The reads run in the
    event loop (no thread per request: under load, handing each request to a thread and back cost more than
    the page's query)."""
    key = (database_url, asyncio.get_running_loop())
    pool = _pools.get(key)
    if pool is None:
        pool = AsyncConnectionPool(database_url, min_size=1, max_size=POOL_SIZE, open=False, timeout=10,
                                   kwargs={"autocommit": True, "application_name": "cityos-sta",
                                           "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"})
        pool = _pools.setdefault(key, pool)
        await pool.open()
    return pool


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"code": status, "type": "error", "message": message}, status_code=status, headers=headers)


def _entity_set(name: str) -> EntitySet:
    entity = ENTITY_SETS.get(name)
    if entity is None:
        raise Refusal(404, f"no entity set {name[:60]!r}; the sets are {', '.join(ENTITY_SETS)}")
    return entity


def _entity_id(text: str) -> str:
    match = _QUOTED.fullmatch(text)
    if match is None:
        raise Refusal(404, "ids here are quoted strings, e.g. Things('snowplow-01')")
    return match.group(1).replace("''", "'")


async def caller(request: Request) -> Principal | None:
    """The staff principal of a bearer token with ``sta:read`` (audited), or None for an anonymous call."""
    header = request.headers.get("authorization", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    settings = request.app.state.settings
    detail = request_detail(request, STAFF_SCOPE)
    if scheme.lower() != "bearer" or not token.strip():
        raise Refusal(401, "send a bearer token, or no Authorization header for public data",
                      {"WWW-Authenticate": "Bearer"})
    principal = await lookup_token(settings.database_url, token.strip())
    if principal is None:
        await audit(settings.database_url, None, "invalid_token", request.url.path,
                    {**detail, "token_hash_prefix": hash_token(token.strip())[:12]}, caller_address(request))
        raise Refusal(401, "invalid or expired token", {"WWW-Authenticate": "Bearer"})
    if not principal.allows(STAFF_SCOPE):
        await audit(settings.database_url, principal, "denied", request.url.path, detail, caller_address(request))
        raise Refusal(403, f"this token lacks the scope {STAFF_SCOPE!r}")
    route = request.scope.get("route")
    await audit(settings.database_url, principal, f"{request.method} {getattr(route, 'path', request.url.path)}",
                request.url.path, detail, caller_address(request), subject="city devices, public and not",
                reason="staff reading the city's sensor data")
    return principal


def _raw_options(request: Request) -> dict[str, str]:
    raw: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name in raw:
            raise QueryError(f"{name[:40]} is given twice")
        raw[name] = value
    return raw


async def _run(request: Request, work) -> Response:
    """Identify the caller, then run ``work(reader)``; map refusals to their answers."""
    try:
        principal = await caller(request)
        settings = request.app.state.settings
        ctx = Context(staff=principal is not None, zone=settings.timezone)

        pool = await pooled(settings.database_url)
        async with pool.connection() as conn:
            body = await work(Reader(conn, ctx, settings.api_url))
    except Refusal as exc:
        return _error(exc.status, exc.message, exc.headers)
    except QueryError as exc:
        return _error(400, str(exc))
    except psycopg.errors.QueryCanceled:
        return _error(503, f"the query took longer than {STATEMENT_TIMEOUT_MS // 1000} s; narrow it "
                           "($filter on phenomenonTime, a smaller $top)", {"Retry-After": "5"})
    except psycopg.OperationalError:  # the database restarted under a pooled connection, or is away
        return _error(503, "the database is not reachable just now; retry shortly", {"Retry-After": "5"})
    except psycopg.DataError as exc:  # arithmetic overflow, division by zero, out-of-range casts
        return _error(400, f"the query cannot be evaluated: {str(exc).splitlines()[0][:200]}")
    headers = {"Cache-Control": "no-store" if ctx.staff else "public, max-age=5"}
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


def _collection(reader: Reader, request: Request, options: Options, rows, total, more) -> dict:
    body: dict = {}
    if total is not None:
        body["@iot.count"] = total
    if more and options.top > 0:  # $top=0 asks for the count only (QGIS's provider does): no page to go on to
        body["@iot.nextLink"] = next_link(f"{reader.base}{request.url.path.removeprefix(PREFIX)}",
                                          _raw_options(request), options)
    body["value"] = [reader.render(options.entity, r, options.select) for r in rows]
    return body


@router.get("", summary="SensorThings API 1.1: the entity sets")
async def landing(request: Request) -> Response:
    """The entity sets and the conformance classes of this service."""

    async def work(reader: Reader) -> dict:
        return {"value": [{"name": name, "url": f"{reader.base}/{name}"} for name in ENTITY_SETS],
                "serverSettings": {"conformance": [
                    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
                    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
                    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
                    "http://www.opengis.net/spec/iot_sensing/1.1/req/create-observations-via-mqtt/observations-creation",
                ]}}

    return await _run(request, work)


@router.get("/{entity_set}({entity_id})", summary="One entity")
async def get_entity(request: Request, entity_set: str, entity_id: str) -> Response:
    """One entity by its quoted id, with ``$select`` and ``$expand``."""

    async def work(reader: Reader) -> dict:
        entity, key = _entity_set(entity_set), _entity_id(entity_id)
        raw = _raw_options(request)
        for name in ("$filter", "$orderby", "$top", "$skip", "$count"):
            if name in raw:
                raise QueryError(f"{name} applies to collections, not to one entity")
        options = parse_options(entity, raw)
        row = await reader.one(entity, key, options)
        if row is None:
            raise Refusal(404, f"no such {entity.singular} (or not visible to this caller)")
        return reader.render(entity, row, options.select)

    return await _run(request, work)


@router.get("/{entity_set}({entity_id})/{navigation}", summary="Entities related to one entity")
async def get_related(request: Request, entity_set: str, entity_id: str, navigation: str) -> Response:
    """The entities a navigation property of one entity leads to (``Datastreams('x')/Observations``), or one
    property of the entity (``Things('x')/name``)."""

    async def work(reader: Reader) -> dict:
        entity, key = _entity_set(entity_set), _entity_id(entity_id)
        raw = _raw_options(request)
        relation = entity.relations.get(navigation)
        if relation is None:
            if navigation in entity.props:
                row = await reader.one(entity, key, Options(entity))
                if row is None:
                    raise Refusal(404, f"no such {entity.singular} (or not visible to this caller)")
                return {navigation: reader.render(entity, row, [navigation])[navigation if navigation != "id"
                                                                             else "@iot.id"]}
            raise Refusal(404, f"{entity.name} has no navigation property or property {navigation[:60]!r}")
        target = ENTITY_SETS[relation.target]
        if entity.name == "Datastreams" and target.name == "Observations" and (keys := key_columns(entity.name, key)):
            # the commonest read of all (a Datastream's Observations): the page's own statement checks that the
            # caller may see the device, so the Datastream is looked up only when the page is empty (404 or not)
            options = parse_options(target, raw)
            rows, total, more = await reader.page(options, keys, {**keys, "domain": None})
            if not rows and await reader.one(entity, key, Options(entity)) is None:
                raise Refusal(404, f"no such {entity.singular} (or not visible to this caller)")
            return _collection(reader, request, options, rows, total, more)
        parent = await reader.one(entity, key, Options(entity))
        if parent is None:
            raise Refusal(404, f"no such {entity.singular} (or not visible to this caller)")
        conditions = {theirs: parent[ours] for ours, theirs in relation.pairs}
        hint = ({"device_id": parent["device_id"], "metric": parent["metric"], "domain": parent["domain"],
                 "series": parent["series"]}
                if target.name == "Observations" and entity.name == "Datastreams" else None)
        if not relation.many:
            options = parse_options(target, raw)
            rows, _, _ = await reader.page(Options(target, select=options.select, expand=options.expand, top=1),
                                     conditions)
            if not rows:
                raise Refusal(404, f"the {entity.singular} has no {navigation}")
            return reader.render(target, rows[0], options.select)
        options = parse_options(target, raw)
        rows, total, more = await reader.page(options, conditions, hint)
        return _collection(reader, request, options, rows, total, more)

    return await _run(request, work)


@router.get("/{entity_set}", summary="An entity set")
async def get_collection(request: Request, entity_set: str) -> Response:
    """An entity set with ``$filter``, ``$expand``, ``$select``, ``$orderby``, ``$top``, ``$skip``, ``$count``;
    pages link to the next with ``@iot.nextLink``."""

    async def work(reader: Reader) -> dict:
        entity = _entity_set(entity_set)
        options = parse_options(entity, _raw_options(request))
        rows, total, more = await reader.page(options)
        return _collection(reader, request, options, rows, total, more)

    return await _run(request, work)
