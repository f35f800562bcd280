"""Context information: entities selected by type, id, ``q`` and geo-query, rendered as NGSI-LD.

One SQL statement per page over the registry, the latest values and the latest positions
(:func:`cityos.ingest.ngsild.model.entities_sql`); the answer is built from its rows in the
representation the caller asked for (normalized, ``keyValues``/``simplified``, ``concise``; GeoJSON).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
from psycopg.rows import dict_row

from cityos.ingest.ngsild.model import (
    REGISTRY_ATTRS,
    TYPE_NAMES,
    VEHICLE_ATTRS,
    device_of,
    entities_sql,
    entity_id,
    unit_code,
)
from cityos.ingest.ngsild.problems import NgsiError
from cityos.ingest.ngsild.query import Params, geo_sql, parse_q, q_sql
from cityos.ingest.ngsild.terms import Context

MAX_LIMIT = 1000
MAX_IDS = 1000
MAX_PATTERN = 256


def iso(moment: datetime) -> str:
    """An NGSI-LD DateTime (UTC, ``Z``)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Selection:
    """Which entities a query asks for (short names already resolved under the request's context)."""

    types: list[str] | None = None
    ids: list[str] | None = None
    id_pattern: str | None = None
    attrs: list[str] | None = None
    q: str | None = None
    georel: str | None = None
    geometry: str | None = None
    coordinates: object = None
    geoproperty: str = "location"
    #: Conditions added by the platform itself (SQL with %(w_...)s placeholders, and their values).
    extra: list[tuple[str, dict]] = field(default_factory=list)


def _split(value: str | None, ctx: Context, what: str) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if len(items) > MAX_IDS:
        raise NgsiError("BadRequestData", f"{what}: at most {MAX_IDS} values")
    return [ctx.compact(ctx.expand(i)) for i in items]


def selection(ctx: Context, *, type: str | None = None, id: str | None = None, idPattern: str | None = None,
              attrs: str | None = None, q: str | None = None, georel: str | None = None,
              geometry: str | None = None, coordinates: str | None = None,
              geoproperty: str | None = None) -> Selection:
    """The selection of a query's parameters (``BadRequestData`` when they do not fit together)."""
    if idPattern is not None and len(idPattern) > MAX_PATTERN:
        raise NgsiError("BadRequestData", f"idPattern is longer than {MAX_PATTERN} characters")
    if (georel is None) != (geometry is None) or (georel is None) != (coordinates is None):
        raise NgsiError("BadRequestData", "a geo-query needs georel, geometry and coordinates together")
    ids = [i.strip() for i in id.split(",") if i.strip()] if id else None
    if ids and len(ids) > MAX_IDS:
        raise NgsiError("BadRequestData", f"id: at most {MAX_IDS} values")
    return Selection(types=_split(type, ctx, "type"), ids=ids, id_pattern=idPattern,
                     attrs=_split(attrs, ctx, "attrs"), q=q, georel=georel, geometry=geometry,
                     coordinates=coordinates, geoproperty=geoproperty or "location")


def where_sql(sel: Selection, params: Params) -> str:
    """SQL conditions on entity rows ``e`` for ``sel``."""
    conds = ["true"]
    if sel.types is not None:
        conds.append(f"e.type = any({params.add(sel.types)}::text[])")
    if sel.ids is not None:
        conds.append(f"e.device_id = any({params.add([device_of(i) for i in sel.ids])}::text[])")
        conds.append(f"('urn:ngsi-ld:' || e.type || ':' || e.device_id) = any({params.add(sel.ids)}::text[])")
    if sel.id_pattern is not None:
        try:
            re.compile(sel.id_pattern)
        except re.error as exc:
            raise NgsiError("BadRequestData", f"idPattern is not a regular expression: {exc}") from exc
        conds.append(f"('urn:ngsi-ld:' || e.type || ':' || e.device_id) ~ {params.add(sel.id_pattern)}::text")
    if sel.q:
        conds.append(q_sql(parse_q(sel.q), params))
    if sel.georel:
        conds.append(geo_sql(sel.georel, sel.geometry or "", sel.coordinates, params, sel.geoproperty))
    if sel.attrs:
        wanted = params.add(sel.attrs)
        vehicle = [a for a in sel.attrs if a in VEHICLE_ATTRS or a == "location" or a in REGISTRY_ATTRS]
        conds.append(f"(exists (select 1 from telemetry.latest_values lv where lv.device_id = e.device_id "
                     f"and lv.metric = any({wanted}::text[])) or {'true' if vehicle else 'false'})")
    for condition, values in sel.extra:
        conds.append(condition)
        params.values.update(values)
    return " and ".join(conds)


def query(conn: psycopg.Connection, sel: Selection, *, staff: bool, limit: int, offset: int,
          count: bool) -> tuple[list[dict], int | None]:
    """Entity rows of ``sel`` (with their latest values) and, when asked, how many there are in all."""
    if limit > MAX_LIMIT:
        raise NgsiError("TooManyResults", f"limit is at most {MAX_LIMIT}")
    params = Params()
    where = where_sql(sel, params)
    base = f"with e as ({entities_sql(staff)})"
    sql = f"""{base}
        select e.device_id, e.domain, e.kind, e.display_name, e.created_at, e.type, e.pos_time, e.geom_time,
               e.speed_kmh, e.heading_deg, st_asgeojson(e.geom, 7) as geojson,
               (select coalesce(json_agg(json_build_array(lv.metric, lv.value, lv.label, lv.time)
                                         order by lv.metric), '[]')
                from telemetry.latest_values lv where lv.device_id = e.device_id) as latest
        from e where {where} order by e.device_id limit %(limit)s offset %(offset)s"""
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(sql, {**params.values, "limit": limit, "offset": offset}).fetchall()
            counted = cur.execute(f"{base} select count(*) as n from e where {where}",
                                  params.values).fetchone() if count else None
            total = counted["n"] if counted else None
    except (psycopg.errors.DataException, psycopg.errors.InvalidParameterValue,
            psycopg.errors.InternalError_) as exc:
        conn.rollback()
        raise NgsiError("BadRequestData", f"the query cannot be run: {str(exc).splitlines()[0][:200]}") from exc
    return rows, total


def _property(value: object, observed: datetime | str | None, unit: str | None = None) -> dict:
    prop: dict = {"type": "Property", "value": value}
    if observed is not None:
        prop["observedAt"] = observed if isinstance(observed, str) else iso(observed)
    if unit:
        prop["unitCode"] = unit
    return prop


def attributes(row: dict) -> dict[str, dict]:
    """The normalized attributes of an entity row."""
    attrs: dict[str, dict] = {}
    if row["display_name"]:
        attrs["name"] = _property(row["display_name"], None)
    if row["kind"]:
        attrs["category"] = _property(row["kind"], None)
    if row["geojson"]:
        attrs["location"] = {"type": "GeoProperty", "value": json.loads(row["geojson"])}
        if row["geom_time"]:
            attrs["location"]["observedAt"] = iso(row["geom_time"])
    for name, (column, unit) in VEHICLE_ATTRS.items():
        if row["domain"] == "vehicle" and row.get(column) is not None:
            attrs[name] = _property(float(row[column]), row["pos_time"], unit)
    for metric, value, label, time in row["latest"]:
        attrs[metric] = _property(label if label is not None else value, time, unit_code(row["domain"], metric))
    return attrs


def render(row: dict, ctx: Context, *, attrs: list[str] | None, key_values: bool, concise: bool,
           sys_attrs: bool = False) -> dict:
    """One entity as NGSI-LD (normalized, keyValues or concise), its names compacted under ``ctx``."""
    entity: dict = {"id": entity_id(row["type"], row["device_id"]), "type": ctx.compact(ctx.expand(row["type"]))}
    if sys_attrs:
        entity["createdAt"] = iso(row["created_at"])
    for name, prop in attributes(row).items():
        if attrs is not None and name not in attrs:
            continue
        short = ctx.compact(ctx.expand(name))
        if key_values:
            entity[short] = prop["value"]
        elif concise:
            entity[short] = {k: v for k, v in prop.items() if k != "type" or v == "GeoProperty"} \
                if len(prop) > 2 else prop["value"]
        else:
            entity[short] = prop
    return entity


def geojson_feature(entity: dict, row: dict) -> dict:
    """An entity as a GeoJSON Feature (its location as the geometry)."""
    properties = {k: v for k, v in entity.items() if k not in ("id", "location")}
    geometry = json.loads(row["geojson"]) if row["geojson"] else None
    return {"id": entity["id"], "type": "Feature", "geometry": geometry, "properties": properties}


def known_types() -> list[str]:
    """Every entity type this server serves."""
    return TYPE_NAMES
