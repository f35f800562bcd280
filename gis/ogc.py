"""OGC API - Features (Part 1: Core, GeoJSON) and Mapbox vector tiles over PostGIS, under /ogc.

Served straight from SQL (``ST_AsGeoJSON``, ``ST_AsMVT``) with the indexes of the layers, in the
manner of tipg: one generic set of endpoints over a registry of collections
(:mod:`cityos.gis.collections`). Works with GDAL's OAPIF driver and QGIS.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from urllib.parse import urlencode

import psycopg
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from cityos.gis import filters
from cityos.gis.collections import COLLECTIONS, Collection
from cityos.platform.db.connection import connect

router = APIRouter(prefix="/ogc", tags=["OGC API Features"])

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    *filters.CONFORMANCE,
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GEOJSON = "application/geo+json"


def _json(body: object, media: str = "application/json") -> Response:
    return Response(json.dumps(body, ensure_ascii=False, default=str), media_type=media)


def _root(request: Request) -> str:
    """The configured base URL of the API (``CITYOS_PUBLIC_BASE_URL``, else its host and port).

    Never the request's ``Host`` header: answers are cached and shared, and one forged header
    would otherwise point every client's links elsewhere."""
    return request.app.state.settings.api_url.rstrip("/")


def _base(request: Request) -> str:
    return _root(request) + "/ogc"


def _collection(collection_id: str) -> Collection:
    if collection_id not in COLLECTIONS:
        raise HTTPException(404, f"no collection {collection_id}")
    return COLLECTIONS[collection_id]


def _describe(base: str, c: Collection, extent: list[float] | None) -> dict:
    body = {
        "id": c.id, "title": c.title, "description": f"{c.title_ja} / {c.title}", "itemType": "feature",
        "crs": [CRS84],
        "links": [
            {"href": f"{base}/collections/{c.id}", "rel": "self", "type": "application/json"},
            {"href": f"{base}/collections/{c.id}/items", "rel": "items", "type": GEOJSON},
            {"href": f"{base}/collections/{c.id}/queryables", "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
             "type": "application/schema+json"},
            {"href": f"{base}/tiles/{c.id}/{{z}}/{{x}}/{{y}}.pbf", "rel": "tiles",
             "type": "application/vnd.mapbox-vector-tile", "templated": True},
        ],
    }
    if extent:
        body["extent"] = {"spatial": {"bbox": [extent], "crs": CRS84}}
    return body


def _extent(conn, c: Collection) -> list[float] | None:
    row = conn.execute(f"select st_xmin(e), st_ymin(e), st_xmax(e), st_ymax(e) from "
                       f"(select st_extent(geom) e from {c.table}) s").fetchone()
    return [float(v) for v in row] if row and row[0] is not None else None


@router.get("", summary="Landing page")
def landing(request: Request) -> Response:
    """Links to the API definition, the conformance classes and the collections."""
    base = _base(request)
    return _json({
        "title": "cityos OGC API - Features", "description": "Public layers of the city / 市の公開レイヤー",
        "links": [
            {"href": base, "rel": "self", "type": "application/json", "title": "this document"},
            {"href": _root(request) + "/openapi.json", "rel": "service-desc",
             "type": "application/vnd.oai.openapi+json;version=3.0", "title": "the API definition"},
            {"href": f"{base}/conformance", "rel": "conformance", "type": "application/json"},
            {"href": f"{base}/collections", "rel": "data", "type": "application/json"},
        ]})


@router.get("/conformance", summary="Conformance classes")
def conformance() -> Response:
    return _json({"conformsTo": CONFORMANCE})


@router.get("/collections", summary="Feature collections")
def collections(request: Request) -> Response:
    base = _base(request)
    with connect(autocommit=True) as conn:
        described = [_describe(base, c, _extent(conn, c)) for c in COLLECTIONS.values()]
    return _json({"links": [{"href": f"{base}/collections", "rel": "self", "type": "application/json"}],
                  "collections": described})


@router.get("/collections/{collection_id}", summary="A feature collection")
def collection(collection_id: str, request: Request) -> Response:
    c = _collection(collection_id)
    with connect(autocommit=True) as conn:
        return _json(_describe(_base(request), c, _extent(conn, c)))


BBOX_FORMS = "minx,miny,maxx,maxy or minx,miny,minz,maxx,maxy,maxz (CRS84)"


def _parse_bbox(bbox: str | None) -> list[float] | None:
    """The 2D box of ``bbox``: four numbers, or six with heights (ignored: the layers are 2D)."""
    if bbox is None:
        return None
    try:
        values = [float(v) for v in bbox.split(",")]
    except ValueError as exc:
        raise HTTPException(400, f"bbox must be {BBOX_FORMS}") from exc
    if len(values) == 6:
        if values[2] > values[5]:
            raise HTTPException(400, f"bbox must be {BBOX_FORMS}")
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4 or not all(map(math.isfinite, values)) or values[0] > values[2] or values[1] > values[3]:
        raise HTTPException(400, f"bbox must be {BBOX_FORMS}")
    return values


def _parse_datetime(value: str | None) -> tuple[datetime | None, datetime | None]:
    if value is None:
        return None, None
    parts = value.split("/")
    try:
        if len(parts) == 1:
            t = datetime.fromisoformat(parts[0].replace("Z", "+00:00"))
            return t, t
        start, end = (None if p in ("", "..") else datetime.fromisoformat(p.replace("Z", "+00:00")) for p in parts)
    except ValueError as exc:
        raise HTTPException(400, "datetime must be an RFC 3339 instant or interval") from exc
    return start, end


def _feature(c: Collection, row: tuple) -> dict:
    props = dict(zip(c.properties, row[2:], strict=True))
    return {"type": "Feature", "id": row[0], "geometry": json.loads(row[1]) if row[1] else None,
            "properties": props}


#: JSON Schema of a column's PostgreSQL type, for /queryables.
_SCHEMA_TYPES = {
    "smallint": {"type": "integer"}, "integer": {"type": "integer"}, "bigint": {"type": "integer"},
    "real": {"type": "number"}, "double precision": {"type": "number"}, "numeric": {"type": "number"},
    "boolean": {"type": "boolean"}, "date": {"type": "string", "format": "date"},
    "timestamp with time zone": {"type": "string", "format": "date-time"},
    "timestamp without time zone": {"type": "string", "format": "date-time"},
}


@router.get("/collections/{collection_id}/queryables", summary="Queryable properties (JSON Schema)")
def queryables(collection_id: str, request: Request) -> Response:
    """The properties a CQL2 ``filter`` of this collection may use, with their types."""
    c = _collection(collection_id)
    with connect(autocommit=True) as conn:
        types = dict(conn.execute(
            "select attname, format_type(atttypid, null) from pg_attribute "
            "where attrelid = %s::regclass and attnum > 0 and not attisdropped", (c.table,)).fetchall())
    props: dict[str, dict] = {"geom": {"title": "geometry", "format": "geometry-any",
                                       "$ref": "https://geojson.org/schema/Geometry.json"}}
    for name in c.properties:
        pg_type = types.get(name, "text")
        props[name] = {"title": name, **_SCHEMA_TYPES.get(pg_type.split("(")[0], {"type": "string"})}
    return _json({"$schema": "https://json-schema.org/draft/2019-09/schema",
                  "$id": f"{_base(request)}/collections/{c.id}/queryables", "type": "object",
                  "title": c.title, "properties": props, "additionalProperties": False},
                 "application/schema+json")


def _filter_condition(c: Collection, text: str | None, lang: str, crs: str | None) -> filters.Condition | None:
    if text is None:
        return None
    if crs not in (None, CRS84):
        raise HTTPException(400, f"filter-crs must be {CRS84}")
    try:
        return filters.to_condition(filters.parse_filter(text, lang), set(c.properties))
    except filters.FilterError as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("/collections/{collection_id}/items", summary="Features (GeoJSON)")
def items(collection_id: str, request: Request, bbox: str | None = None,
          datetime_: str | None = Query(None, alias="datetime"),
          filter_: str | None = Query(None, alias="filter", description="A CQL2 filter, e.g. kind = 'hydrant'"),
          filter_lang: str = Query("cql2-text", alias="filter-lang", description="cql2-text or cql2-json"),
          filter_crs: str | None = Query(None, alias="filter-crs", description=f"Only {CRS84}"),
          limit: int = Query(100, ge=1, le=10_000), offset: int = Query(0, ge=0)) -> Response:
    """Features of the collection, filtered by ``bbox`` (CRS84; features whose geometry meets the box),
    ``datetime`` and a CQL2 ``filter`` over its queryables, paged by limit/offset (default 100, at most
    10,000 a page)."""
    c = _collection(collection_id)
    box = _parse_bbox(bbox)
    start, end = _parse_datetime(datetime_)
    where, params = ["true"], {"limit": limit, "offset": offset}
    condition_of_filter = _filter_condition(c, filter_, filter_lang, filter_crs)
    if condition_of_filter is not None:
        where.append(condition_of_filter.sql)
        params.update(condition_of_filter.params)
    if box:
        # the geometry itself, not its bounding box (st_intersects still uses the index's && first)
        where.append("st_intersects(geom, st_makeenvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326))")
        params.update(x0=box[0], y0=box[1], x1=box[2], y1=box[3])
    if (start or end) and c.datetime_column:
        if start:
            where.append(f"{c.datetime_column} >= %(start)s")
            params["start"] = start
        if end:
            where.append(f"{c.datetime_column} <= %(end)s")
            params["end"] = end
    condition = " and ".join(where)
    columns = ", ".join(c.properties)
    with connect(autocommit=True) as conn:
        try:
            matched = conn.execute(f"select count(*) from {c.table} where {condition}", params).fetchone()[0]
            rows = conn.execute(f"select {c.id_column}::text, st_asgeojson(geom, 7), {columns} from {c.table} "
                                f"where {condition} order by {c.id_column} limit %(limit)s offset %(offset)s",
                                params).fetchall()
        except (psycopg.errors.DataError, psycopg.errors.UndefinedFunction,
                psycopg.errors.InternalError_) as exc:  # e.g. a text property compared with a number
            if condition_of_filter is None:
                raise
            raise HTTPException(400, f"the filter does not fit the properties' types: "
                                     f"{str(exc).splitlines()[0][:300]}") from None
    features = [_feature(c, r) for r in rows]
    base = f"{_base(request)}/collections/{c.id}/items"
    query = dict(request.query_params)
    links = [{"href": f"{base}?{request.url.query}" if request.url.query else base, "rel": "self",
              "type": GEOJSON}]
    if offset + len(features) < matched:
        query.update(offset=str(offset + limit), limit=str(limit))
        links.append({"href": f"{base}?{urlencode(query)}", "rel": "next",
                      "type": GEOJSON})
    return _json({"type": "FeatureCollection", "features": features, "numberMatched": matched,
                  "numberReturned": len(features), "timeStamp": datetime.now().astimezone().isoformat(),
                  "links": links}, GEOJSON)


@router.get("/collections/{collection_id}/items/{feature_id}", summary="One feature")
def item(collection_id: str, feature_id: str) -> Response:
    c = _collection(collection_id)
    columns = ", ".join(c.properties)
    with connect(autocommit=True) as conn:
        row = conn.execute(f"select {c.id_column}::text, st_asgeojson(geom, 7), {columns} from {c.table} "
                           f"where {c.id_column}::text = %s", (feature_id,)).fetchone()
    if row is None:
        raise HTTPException(404, f"no feature {feature_id} in {collection_id}")
    return _json(_feature(c, row), GEOJSON)


@router.get("/tiles/{collection_id}/{z}/{x}/{y}.pbf", summary="Vector tile (MVT)",
            response_class=Response)
def tile(collection_id: str, z: int, x: int, y: int) -> Response:
    """A Mapbox vector tile of the collection in Web Mercator (layer named after the collection)."""
    c = _collection(collection_id)
    if not (0 <= z <= 22 and 0 <= x < 2**z and 0 <= y < 2**z):
        raise HTTPException(404, "no such tile")
    columns = ", ".join(c.properties)
    sql = f"""
        with bounds as (select st_tileenvelope(%(z)s, %(x)s, %(y)s) as env),
        mvt as (
            select st_asmvtgeom(st_transform(t.geom, 3857), bounds.env, 4096, 64, true) as geom, {columns}
            from {c.table} t, bounds
            where t.geom && st_transform(bounds.env, 4326)
        )
        select st_asmvt(mvt.*, %(layer)s, 4096, 'geom') from mvt"""
    with connect(autocommit=True) as conn:
        data = conn.execute(sql, {"z": z, "x": x, "y": y, "layer": c.id}).fetchone()[0]
    return Response(bytes(data or b""), media_type="application/vnd.mapbox-vector-tile",
                    headers={"Cache-Control": "public, max-age=60"})
