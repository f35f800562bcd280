"""The NGSI-LD API under ``/ngsi-ld/v1``: context information, temporal evolution, subscriptions, producers.

Access as on every route: without a token, public devices only (city vehicles, with patrol cars 15 minutes
late; environment sensors); a token with ``telemetry:read`` sees every device, and each such call is audited;
producers need ``telemetry:write``. Subscriptions belong to the token or API key (``X-API-Key``) that made
them: nobody else can read, change or delete them.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials

from cityos.ingest.admission import Admission
from cityos.ingest.ngsild import entities as ent
from cityos.ingest.ngsild import producers, subscriptions, temporal
from cityos.ingest.ngsild.model import READ_SCOPE, TYPES, WRITE_SCOPE, device_of, sees_everything, unit_code
from cityos.ingest.ngsild.problems import NgsiError, NgsiRoute
from cityos.ingest.ngsild.query import Params
from cityos.ingest.ngsild.terms import (
    CORE_CONTEXT_URL,
    CORE_FILE,
    Context,
    core_context,
    from_document,
    from_link_header,
    link_header,
)
from cityos.platform.auth import (
    Principal,
    audit_admitted,
    audit_invalid_token,
    bearer,
    hash_token,
    lookup_token,
    request_detail,
    require_scope,
)
from cityos.platform.db.connection import connect

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD"], route_class=NgsiRoute)

JSON, JSONLD, GEOJSON = "application/json", "application/ld+json", "application/geo+json"
DEFAULT_LIMIT = 20
MAX_BODY = 2 * 1024 * 1024


async def caller(request: Request,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None
                 ) -> Principal | None:
    """The caller's token (None: anonymous); a call that uses ``telemetry:read`` is audited."""
    if credentials is None:
        return None
    detail = request_detail(request, READ_SCOPE)
    principal = await lookup_token(request.app.state.settings.database_url, credentials.credentials)
    if principal is None:
        await audit_invalid_token(request, credentials.credentials, detail)
        raise NgsiError("InvalidRequest", "invalid or expired token", status=401)
    if sees_everything(principal):
        await audit_admitted(request, principal, detail)
    return principal


Caller = Annotated[Principal | None, Depends(caller)]


def _context(request: Request) -> Context:
    base = request.app.state.settings.api_url.rstrip("/")
    if request.headers.get("NGSILD-Tenant"):
        raise NgsiError("NoMultiTenantSupport", "this server has one tenant: send no NGSILD-Tenant header")
    return from_link_header(request.headers.get("link"), base)


def _accept(request: Request, geo: bool = False) -> str:
    accept = request.headers.get("accept", "*/*").lower()
    for media in [m.split(";")[0].strip() for m in accept.split(",")]:
        if media in (JSON, JSONLD) or (geo and media == GEOJSON):
            return media
        if media in ("*/*", "application/*"):
            return JSON
    raise NgsiError("NotAcceptable", "answers are application/json, application/ld+json"
                                     + (" or application/geo+json" if geo else ""))


def _answer(request: Request, body: object, media: str, status: int = 200, headers: dict | None = None) -> Response:
    headers = dict(headers or {})
    if media == JSONLD:
        if isinstance(body, dict):
            body = {**body, "@context": CORE_CONTEXT_URL}
        elif isinstance(body, list):
            body = [{**b, "@context": CORE_CONTEXT_URL} if isinstance(b, dict) else b for b in body]
    elif media in (JSON, GEOJSON):
        headers["Link"] = ", ".join(h for h in (link_header(), headers.get("Link")) if h)
    return Response(json.dumps(body, ensure_ascii=False), status_code=status, media_type=media, headers=headers)


def _options(options: str | None) -> set[str]:
    known = {"keyValues", "simplified", "concise", "normalized", "sysAttrs", "temporalValues", "aggregatedValues",
             "count", "update", "replace"}
    items = {o.strip() for o in (options or "").split(",") if o.strip()}
    if items - known:
        raise NgsiError("BadRequestData", f"unknown options: {', '.join(sorted(items - known))}")
    return items


async def _body(request: Request) -> object:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise NgsiError("BadRequestData", f"the body is larger than {MAX_BODY} bytes", status=413)
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind not in (JSON, JSONLD):
        raise NgsiError("InvalidRequest", "send application/json (context in a Link header) or application/ld+json "
                                          "(context in @context)", status=415)
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise NgsiError("InvalidRequest", f"the body is not JSON: {exc}") from exc
    request.state.ngsild_body_kind = kind
    return body


def _body_context(request: Request, item: object) -> Context:
    """The context of a body item: its @context (ld+json) or the Link header (json)."""
    base = request.app.state.settings.api_url.rstrip("/")
    if request.state.ngsild_body_kind == JSONLD:
        if not isinstance(item, dict) or "@context" not in item:
            raise NgsiError("BadRequestData", "an application/ld+json body carries its @context")
        if request.headers.get("link"):
            raise NgsiError("BadRequestData", "application/ld+json carries its @context in the body, not in Link")
        return from_document(item["@context"], base)
    if isinstance(item, dict) and "@context" in item:
        raise NgsiError("BadRequestData", "application/json bodies carry no @context: use a Link header or "
                                          "application/ld+json")
    return _context(request)


def _page_links(request: Request, limit: int, offset: int, returned: int, total: int | None) -> dict:
    headers = {}
    if total is not None:
        headers["NGSILD-Results-Count"] = str(total)
    more = (offset + returned < total) if total is not None else returned == limit
    if more and limit > 0:
        query = dict(request.query_params)
        query["offset"] = str(offset + limit)
        base = request.app.state.settings.api_url.rstrip("/") + request.url.path
        from urllib.parse import urlencode

        headers["Link"] = f'<{base}?{urlencode(query)}>; rel="next"; type="application/ld+json"'
    return headers


# --- context information ------------------------------------------------------------------------------

@router.get("/entities", summary="Query entities")
def query_entities(request: Request, principal: Caller, type: str | None = None, id: str | None = None,
                   idPattern: str | None = None, attrs: str | None = None, q: str | None = None,
                   georel: str | None = None, geometry: str | None = None, coordinates: str | None = None,
                   geoproperty: str | None = None, options: str | None = None, format: str | None = None,
                   limit: int = Query(DEFAULT_LIMIT, ge=0, le=ent.MAX_LIMIT), offset: int = Query(0, ge=0),
                   count: bool = False) -> Response:
    """Entities by type, id, idPattern, q and geo-query; ``options=keyValues`` for plain values, ``count=true``
    for the total in ``NGSILD-Results-Count``."""
    ctx, media, opts = _context(request), _accept(request, geo=True), _options(options)
    if not any((type, id, idPattern, attrs, q, georel)):
        raise NgsiError("BadRequestData", "name at least one of type, id, idPattern, attrs, q or a geo-query")
    sel = ent.selection(ctx, type=type, id=id, idPattern=idPattern, attrs=attrs, q=q, georel=georel,
                        geometry=geometry, coordinates=coordinates, geoproperty=geoproperty)
    key_values = bool(opts & {"keyValues", "simplified"}) or format in ("keyValues", "simplified")
    with connect(autocommit=True) as conn:
        rows, total = ent.query(conn, sel, staff=sees_everything(principal), limit=limit, offset=offset,
                                count=count)
    entities = [ent.render(r, ctx, attrs=sel.attrs, key_values=key_values, concise="concise" in opts,
                           sys_attrs="sysAttrs" in opts) for r in rows]
    headers = _page_links(request, limit, offset, len(rows), total)
    if media == GEOJSON:
        body = {"type": "FeatureCollection",
                "features": [ent.geojson_feature(e, r) for e, r in zip(entities, rows, strict=True)]}
        return _answer(request, body, GEOJSON, headers=headers)
    return _answer(request, entities, media, headers=headers)


@router.post("/entityOperations/query", summary="Query entities (a Query in the body)")
async def query_entities_post(request: Request, principal: Caller, limit: int = Query(DEFAULT_LIMIT, ge=0,
                                                                                       le=ent.MAX_LIMIT),
                              offset: int = Query(0, ge=0), count: bool = False, options: str | None = None
                              ) -> Response:
    """The same query as ``GET /entities``, sent as the standard's Query object (``entities``, ``attrs``, ``q``,
    ``geoQ``) for queries too long for a URL."""
    body = await _body(request)
    if not isinstance(body, dict) or body.get("type") != "Query":
        raise NgsiError("BadRequestData", 'the body is a Query object: {"type": "Query", ...}')
    ctx, media, opts = _body_context(request, body), _accept(request, geo=True), _options(options)
    items = body.get("entities") or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items) or len(items) > 100:
        raise NgsiError("BadRequestData", "entities is a list of {type, id, idPattern}")
    patterns = [i["idPattern"] for i in items if "idPattern" in i]
    if len(patterns) > 1:
        raise NgsiError("BadRequestData", "at most one idPattern per query")
    geo = body.get("geoQ") or {}
    if not isinstance(geo, dict):
        raise NgsiError("BadRequestData", "geoQ is an object {georel, geometry, coordinates}")
    attrs = body.get("attrs")
    if attrs is not None and (not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs)):
        raise NgsiError("BadRequestData", "attrs is a list of attribute names")
    types = ",".join(str(i["type"]) for i in items if "type" in i) or None
    ids = ",".join(str(i["id"]) for i in items if "id" in i) or None
    q = body.get("q")
    if not any((types, ids, patterns, attrs, q, geo)):
        raise NgsiError("BadRequestData", "name at least one of entities, attrs, q or geoQ")
    coordinates = geo.get("coordinates")
    sel = ent.selection(ctx, type=types, id=ids, idPattern=patterns[0] if patterns else None,
                        attrs=",".join(attrs) if attrs else None, q=q if isinstance(q, str) else None,
                        georel=geo.get("georel"), geometry=geo.get("geometry"),
                        coordinates=json.dumps(coordinates) if coordinates is not None else None,
                        geoproperty=geo.get("geoproperty"))
    with connect(autocommit=True) as conn:
        rows, total = ent.query(conn, sel, staff=sees_everything(principal), limit=limit, offset=offset,
                                count=count)
    entities = [ent.render(r, ctx, attrs=sel.attrs, key_values=bool(opts & {"keyValues", "simplified"}),
                           concise="concise" in opts, sys_attrs="sysAttrs" in opts) for r in rows]
    return _answer(request, entities, media, headers=_page_links(request, limit, offset, len(rows), total))


@router.get("/entities/{entityId}", summary="Retrieve an entity")
def retrieve_entity(entityId: str, request: Request, principal: Caller, attrs: str | None = None,
                    options: str | None = None, format: str | None = None) -> Response:
    """One entity by id (404 when it does not exist or the caller may not see it)."""
    ctx, media, opts = _context(request), _accept(request, geo=True), _options(options)
    device_of(entityId)
    sel = ent.selection(ctx, id=entityId, attrs=attrs)
    with connect(autocommit=True) as conn:
        rows, _ = ent.query(conn, sel, staff=sees_everything(principal), limit=1, offset=0, count=False)
    if not rows:
        raise NgsiError("ResourceNotFound", "no such entity, or none this caller may see")
    key_values = bool(opts & {"keyValues", "simplified"}) or format in ("keyValues", "simplified")
    entity = ent.render(rows[0], ctx, attrs=sel.attrs, key_values=key_values, concise="concise" in opts,
                        sys_attrs="sysAttrs" in opts)
    if media == GEOJSON:
        return _answer(request, ent.geojson_feature(entity, rows[0]), GEOJSON)
    return _answer(request, entity, media)


@router.get("/types", summary="Entity types")
def entity_types(request: Request, principal: Caller, details: bool = False) -> Response:
    """The entity types a caller can find (with details: their attributes)."""
    media = _accept(request)
    names = sorted({t.name for t in TYPES if sees_everything(principal) or t.domain in ("vehicle", "env")})
    if not details:
        return _answer(request, {"id": "urn:ngsi-ld:EntityTypeList:cityos", "type": "EntityTypeList",
                                 "typeList": names}, media)
    body = [{"id": name, "type": "EntityType", "typeName": name,
             "attributeNames": _attribute_names(principal, name)} for name in names]
    return _answer(request, body, media)


@router.get("/types/{type_name}", summary="One entity type")
def entity_type(type_name: str, request: Request, principal: Caller) -> Response:
    """An entity type with its number of entities and its attributes."""
    media, ctx = _accept(request), _context(request)
    name = ctx.compact(ctx.expand(type_name))
    if name not in {t.name for t in TYPES if sees_everything(principal) or t.domain in ("vehicle", "env")}:
        raise NgsiError("ResourceNotFound", f"no entity type {type_name[:100]}")
    with connect(autocommit=True) as conn:
        _, total = ent.query(conn, ent.selection(ctx, type=name), staff=sees_everything(principal), limit=0,
                             offset=0, count=True)
    return _answer(request, {"id": name, "type": "EntityTypeInfo", "typeName": name, "entityCount": total,
                             "attributeDetails": [{"id": a, "type": "Attribute", "attributeName": a,
                                                   "attributeTypes": ["GeoProperty" if a == "location"
                                                                      else "Property"]}
                                                  for a in _attribute_names(principal, name)]}, media)


def _attribute_names(principal: Principal | None, type_name: str | None = None) -> list[str]:
    staff = sees_everything(principal)
    with connect(autocommit=True) as conn:
        sel = ent.selection(Context(), type=type_name) if type_name else ent.Selection()
        params = Params()
        where = ent.where_sql(sel, params)
        metrics = conn.execute(f"with e as ({ent.entities_sql(staff)}) select distinct lv.metric from e join "
                               f"telemetry.latest_values lv on lv.device_id = e.device_id where {where}",
                               params.values).fetchall()
    names = {"name", "category", "location"} | {m for (m,) in metrics}
    if type_name in (None, "Vehicle"):
        names |= {"speed", "heading"}
    return sorted(names)


@router.get("/attributes", summary="Attributes")
def attribute_list(request: Request, principal: Caller, details: bool = False) -> Response:
    """Every attribute name of the entities a caller can see."""
    media = _accept(request)
    names = _attribute_names(principal)
    if not details:
        return _answer(request, {"id": "urn:ngsi-ld:AttributeList:cityos", "type": "AttributeList",
                                 "attributeList": names}, media)
    return _answer(request, [{"id": n, "type": "Attribute", "attributeName": n} for n in names], media)


@router.get("/attributes/{attr}", summary="One attribute")
def attribute_info(attr: str, request: Request, principal: Caller) -> Response:
    """One attribute: the types that have it and its unit where the catalog gives one."""
    media, ctx = _accept(request), _context(request)
    name = ctx.compact(ctx.expand(attr))
    types = [t for t in sorted({t.name for t in TYPES}) if name in _attribute_names(principal, t)
             and (sees_everything(principal) or t in ("Vehicle", "WeatherObserved", "AirQualityObserved", "Device"))]
    if not types:
        raise NgsiError("ResourceNotFound", f"no attribute {attr[:100]}")
    units = sorted({u for t in TYPES for u in [unit_code(t.domain, name)] if u})
    return _answer(request, {"id": name, "type": "Attribute", "attributeName": name, "typeNames": types,
                             **({"unitCodes": units} if units else {})}, media)


@router.get("/jsonldContexts/{name}", summary="The core @context, served locally")
def jsonld_context(name: str) -> Response:
    """The NGSI-LD core context (ETSI's, v1.8), so clients without internet can resolve it."""
    if name != CORE_FILE:
        raise NgsiError("ResourceNotFound", f"contexts served here: {CORE_FILE}")
    return Response(json.dumps(core_context()), media_type=JSONLD, headers={"Cache-Control": "max-age=86400"})


# --- producers ----------------------------------------------------------------------------------------

@router.post("/entityOperations/upsert", summary="Upsert entities (producers)")
async def upsert_entities(request: Request, options: str | None = None,
                          principal: Principal = Depends(require_scope(WRITE_SCOPE))) -> Response:
    """Store the attributes of registered devices' entities as readings (same validation, dead letters and
    writer as MQTT). 204 when all are stored, 207 with the errors of those that are not."""
    body = await _body(request)
    opts = _options(options)
    with connect(autocommit=True) as conn:
        result = producers.upsert(conn, body, lambda item: _body_context(request, item),  # type: ignore[arg-type]
                                  key_values="keyValues" in opts, client=f"ngsi-ld:{principal.name}")
    if result.errors:
        return JSONResponse({"success": result.success, "errors": result.errors}, status_code=207)
    return Response(status_code=204)


async def _update_attrs(entityId: str, request: Request, principal: Principal, options: str | None) -> Response:
    body = await _body(request)
    if not isinstance(body, dict):
        raise NgsiError("BadRequestData", "the body is a JSON object of attributes")
    ctx = _body_context(request, body)
    with connect(autocommit=True) as conn:
        admission = Admission()
        admission.refresh(conn, force=True)
        producers.store_entity(conn, entityId, None, body, ctx, key_values="keyValues" in _options(options),
                               client=f"ngsi-ld:{principal.name}", admission=admission)
    return Response(status_code=204)


@router.patch("/entities/{entityId}/attrs", summary="Update attributes (producers)")
async def update_attrs(entityId: str, request: Request, options: str | None = None,
                       principal: Principal = Depends(require_scope(WRITE_SCOPE))) -> Response:
    """New values of an entity's attributes, stored as readings of its device."""
    return await _update_attrs(entityId, request, principal, options)


@router.post("/entities/{entityId}/attrs", summary="Append attributes (producers)")
async def append_attrs(entityId: str, request: Request, options: str | None = None,
                       principal: Principal = Depends(require_scope(WRITE_SCOPE))) -> Response:
    """Values of an entity's attributes (new or not), stored as readings of its device."""
    return await _update_attrs(entityId, request, principal, options)


# --- temporal -----------------------------------------------------------------------------------------

def _temporal_entity(conn, row: dict, ctx: Context, attrs: list[str] | None, win: temporal.Window, opts: set[str],
                     aggr: tuple[list[str], timedelta] | None, staff: bool) -> dict:
    names = attrs or [n for n in ent.attributes(row) if n not in ("name", "category")]
    entity: dict = {"id": ent.entity_id(row["type"], row["device_id"]), "type": row["type"]}
    for name in names:
        value: dict | list[dict] | None
        if aggr is not None:
            value = temporal.aggregated(conn, row, name, win, aggr[0], aggr[1], staff=staff)
        else:
            instances = temporal.instances(conn, row, name, win, staff=staff)
            value = instances
            if instances and "temporalValues" in opts:
                value = {"type": instances[0]["type"], "values": [[i["value"], i["observedAt"]] for i in instances]}
        if value:
            entity[ctx.compact(ctx.expand(name))] = value
    return entity


def _temporal(request: Request, principal: Principal | None, sel: ent.Selection, timerel, timeAt, endTimeAt,
              lastN, aggrMethods, aggrPeriodDuration, options, limit: int, offset: int, count: bool) -> tuple:
    ctx, opts = _context(request), _options(options)
    win = temporal.window(timerel, timeAt, endTimeAt, lastN)
    aggr = None
    if "aggregatedValues" in opts or aggrMethods:
        length = temporal.period(aggrPeriodDuration or "P1D")
        assert length is not None
        aggr = (temporal.methods(aggrMethods), length)
    staff = sees_everything(principal)
    with connect(autocommit=True) as conn:
        rows, total = ent.query(conn, sel, staff=staff, limit=limit, offset=offset, count=count)
        body = [_temporal_entity(conn, r, ctx, sel.attrs, win, opts, aggr, staff) for r in rows]
    return body, rows, total


@router.get("/temporal/entities", summary="Query the temporal evolution of entities")
def temporal_entities(request: Request, principal: Caller, type: str | None = None, id: str | None = None,
                      idPattern: str | None = None, attrs: str | None = None, q: str | None = None,
                      georel: str | None = None, geometry: str | None = None, coordinates: str | None = None,
                      timerel: str | None = None, timeAt: str | None = None, endTimeAt: str | None = None,
                      lastN: int | None = None, aggrMethods: str | None = None,
                      aggrPeriodDuration: str | None = None, options: str | None = None,
                      limit: int = Query(DEFAULT_LIMIT, ge=0, le=100), offset: int = Query(0, ge=0),
                      count: bool = False) -> Response:
    """History of the selected entities' attributes (``timerel``, ``lastN``), raw or aggregated
    (``aggrMethods`` over ``aggrPeriodDuration``)."""
    media, ctx = _accept(request), _context(request)
    if not any((type, id, idPattern, attrs, q, georel)):
        raise NgsiError("BadRequestData", "name at least one of type, id, idPattern, attrs, q or a geo-query")
    sel = ent.selection(ctx, type=type, id=id, idPattern=idPattern, attrs=attrs, q=q, georel=georel,
                        geometry=geometry, coordinates=coordinates)
    body, rows, total = _temporal(request, principal, sel, timerel, timeAt, endTimeAt, lastN, aggrMethods,
                                  aggrPeriodDuration, options, limit, offset, count)
    return _answer(request, body, media, headers=_page_links(request, limit, offset, len(rows), total))


@router.get("/temporal/entities/{entityId}", summary="The temporal evolution of one entity")
def temporal_entity(entityId: str, request: Request, principal: Caller, attrs: str | None = None,
                    timerel: str | None = None, timeAt: str | None = None, endTimeAt: str | None = None,
                    lastN: int | None = None, aggrMethods: str | None = None, aggrPeriodDuration: str | None = None,
                    options: str | None = None) -> Response:
    """History of one entity's attributes."""
    media, ctx = _accept(request), _context(request)
    device_of(entityId)
    sel = ent.selection(ctx, id=entityId, attrs=attrs)
    body, _, _ = _temporal(request, principal, sel, timerel, timeAt, endTimeAt, lastN, aggrMethods,
                           aggrPeriodDuration, options, 1, 0, False)
    if not body:
        raise NgsiError("ResourceNotFound", "no such entity, or none this caller may see")
    return _answer(request, body[0], media)


# --- subscriptions ------------------------------------------------------------------------------------

def _owner(request: Request, principal: Principal | None) -> tuple[str, str]:
    """Who owns the subscriptions of this call: the bearer token, else the API key."""
    if principal is not None:
        return "token", hash_token(request.headers["authorization"].split(" ", 1)[1].strip())
    key = request.headers.get("x-api-key") or request.query_params.get("api_key")
    if not key:
        raise NgsiError("InvalidRequest", "subscriptions belong to a token or an API key: send one "
                                          "(X-API-Key, from POST /api/v1/keys)", status=401)
    from cityos.platform.ratelimit import hash_key

    return "key", hash_key(key)


def _private_hosts(request: Request) -> set[str]:
    hosts = request.app.state.settings.ngsild_notify_private_hosts
    return {h.strip() for h in hosts.split(",") if h.strip()}


@router.post("/subscriptions", status_code=201, summary="Create a subscription")
async def create_subscription(request: Request, principal: Caller) -> Response:
    """A subscription owned by the caller's token or API key; notifications over HTTP or MQTT."""
    owner = _owner(request, principal)
    body = await _body(request)
    ctx = _body_context(request, body)
    normalised = subscriptions.normalise(body, ctx, _private_hosts(request))  # type: ignore[arg-type]
    with connect(autocommit=True) as conn:
        sub_id = subscriptions.create(conn, normalised, owner)
    base = request.app.state.settings.api_url.rstrip("/")
    return Response(status_code=201, headers={"Location": f"{base}/ngsi-ld/v1/subscriptions/{sub_id}"})


@router.get("/subscriptions", summary="The caller's subscriptions")
def list_subscriptions(request: Request, principal: Caller, limit: int = Query(DEFAULT_LIMIT, ge=1, le=100),
                       offset: int = Query(0, ge=0)) -> Response:
    """The subscriptions of the caller's token or API key."""
    owner, media = _owner(request, principal), _accept(request)
    with connect(autocommit=True) as conn:
        return _answer(request, subscriptions.list_owned(conn, owner, limit, offset), media)


@router.get("/subscriptions/{subscriptionId}", summary="One subscription")
def get_subscription(subscriptionId: str, request: Request, principal: Caller) -> Response:
    """One of the caller's subscriptions with its notification status."""
    owner, media = _owner(request, principal), _accept(request)
    with connect(autocommit=True) as conn:
        return _answer(request, subscriptions.get(conn, subscriptionId, owner), media)


@router.patch("/subscriptions/{subscriptionId}", status_code=204, summary="Change a subscription")
async def update_subscription(subscriptionId: str, request: Request, principal: Caller) -> Response:
    """Change members of one of the caller's subscriptions."""
    owner = _owner(request, principal)
    body = await _body(request)
    changes = subscriptions.normalise(body, _body_context(request, body), _private_hosts(request),  # type: ignore
                                      partial=True)
    with connect(autocommit=True) as conn:
        subscriptions.update(conn, subscriptionId, owner, changes)
    return Response(status_code=204)


@router.delete("/subscriptions/{subscriptionId}", status_code=204, summary="Delete a subscription")
def delete_subscription(subscriptionId: str, request: Request, principal: Caller) -> Response:
    """Delete one of the caller's subscriptions."""
    owner = _owner(request, principal)
    with connect(autocommit=True) as conn:
        subscriptions.delete(conn, subscriptionId, owner)
    return Response(status_code=204)
