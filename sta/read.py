"""Reading entity sets: the options of a request as SQL (placeholders only), rows as SensorThings JSON.

One statement per page and one per expanded navigation property (a lateral join over the page's rows, each
parent with its own ``$top``), never one per row.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

import psycopg
from psycopg.rows import dict_row

from cityos.ingest.catalog import DOMAINS, field_for
from cityos.sta.entities import ENTITY_SETS, SERIES, Context, EntitySet, observations_source
from cityos.sta.filter import Params, Translator
from cityos.sta.options import Options

PREFIX = "/sta/v1.1"
_ZERO = timedelta(0)


_PLAIN_ID = re.compile(r"[A-Za-z0-9():@~_.-]*")


def quote_id(value: str) -> str:
    """An id as it appears in a URL: ``'snowplow-01'`` (quotes doubled, characters percent-encoded)."""
    if _PLAIN_ID.fullmatch(value):  # most ids (a page of Observations writes 100): nothing to encode
        return "'" + value + "'"
    return quote("'" + value.replace("'", "''") + "'", safe="'():@~-_.")


def iso(value: datetime) -> str:
    if value.utcoffset() != _ZERO:
        value = value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


class Reader:
    """Reads entities for one caller (``ctx``) on an asynchronous connection, writing links under ``base``
    (the configured public URL)."""

    def __init__(self, conn: psycopg.AsyncConnection | None, ctx: Context, base: str):
        self._conn, self.ctx, self.base = conn, ctx, base.rstrip("/") + PREFIX

    @property
    def conn(self) -> psycopg.AsyncConnection:
        """The connection reads run on (a Reader built without one only renders)."""
        if self._conn is None:
            raise RuntimeError("this Reader only renders entities; it has no connection to read with")
        return self._conn

    # -- SQL --------------------------------------------------------------------------------------------

    def _select_list(self, entity: EntitySet, alias: str = "a") -> str:
        cols = [f"{alias}.id"]
        for name, prop in entity.props.items():
            if name == "id" or prop.kind == "unit":
                continue
            sql = prop.sql.format(a=alias)
            sql = f"st_asgeojson({sql})::json" if prop.kind == "geojson" else sql
            cols.append(f'{sql} as "{name}"')
        cols += [f"{alias}.{c}" for c in entity.columns]
        return ", ".join(cols)

    def _where(self, options: Options, alias: str = "a") -> str:
        if options.filter is None:
            return "true"
        entity = options.entity
        return Translator(lambda path: entity.resolve(path, alias, self.ctx), self.ctx.params).condition(
            options.filter)

    def _order(self, options: Options, alias: str = "a") -> str:
        entity = options.entity
        order = [f"{entity.props[name].sql.format(a=alias)} {direction}"
                 for name, direction in (options.orderby or entity.default_order)]
        return ", ".join(order + [column.format(a=alias) for column in entity.tiebreak])

    def _source(self, entity: EntitySet, hint: dict | None) -> str:
        if entity.name == "Observations" and hint:
            return observations_source(self.ctx, hint["device_id"], hint["metric"], hint["domain"], hint.get("series"))
        return entity.source(self.ctx)

    async def page(self, options: Options, conditions: dict[str, object] | None = None,
             hint: dict | None = None) -> tuple[list[dict], int | None, bool]:
        """A page of ``options.entity`` (rows, total count if asked, whether there are more)."""
        entity = options.entity
        source = self._source(entity, hint)
        where = [self._where(options)]
        for column, value in (conditions or {}).items():
            cast = "timestamptz" if isinstance(value, datetime) else "text"
            where.append(f"a.{column} = {self.ctx.params.add(value, cast)}")
        condition = " and ".join(where)
        limit, offset = self.ctx.params.add(options.top + 1, "int8"), self.ctx.params.add(options.skip, "int8")
        sql = (f"select {self._select_list(entity)} from {source} a where {condition} "
               f"order by {self._order(options)} limit {limit} offset {offset}")
        async with self.conn.cursor(row_factory=dict_row) as cur:
            rows = await (await cur.execute(sql, self.ctx.params.values)).fetchall()
            total = None
            if options.count:
                counted = await (await cur.execute(f"select count(*) as n from {source} a where {condition}",
                                                   self.ctx.params.values)).fetchone()
                total = counted["n"] if counted else 0
        more = len(rows) > options.top
        rows = rows[:options.top]
        await self._expand(options, rows)
        return rows, total, more

    async def one(self, entity: EntitySet, entity_id: str, options: Options) -> dict | None:
        """One entity by id (with its expansions), or None."""
        rows, _, _ = await self.page(Options(entity, select=options.select, expand=options.expand, top=1),
                               {"id": entity_id, **key_columns(entity.name, entity_id)})
        return rows[0] if rows else None

    async def _expand(self, options: Options, rows: list[dict]) -> None:
        if not rows:
            return
        for item in options.expand:
            relation = options.entity.relations[item.name]
            target, child = ENTITY_SETS[relation.target], item.options
            keys = [sorted({(tuple(r[ours] for ours, _ in relation.pairs)) for r in rows})]
            arrays = [self.ctx.params.add([k[i] for k in keys[0]], "text[]") for i in range(len(relation.pairs))]
            key_cols = [f"k{i}" for i in range(len(relation.pairs))]
            join = " and ".join(f"c.{theirs} = k.{key_cols[i]}" for i, (_, theirs) in enumerate(relation.pairs))
            limit = self.ctx.params.add((child.top + 1) if relation.many else 1, "int8")
            offset = self.ctx.params.add(child.skip if relation.many else 0, "int8")
            sql = (f"select k.*, x.* from unnest({', '.join(arrays)}) k({', '.join(key_cols)}) cross join lateral ("
                   f"select {self._select_list(target, 'c')} from {target.source(self.ctx)} c "
                   f"where {join} and {self._where(child, 'c')} order by {self._order(child, 'c')} "
                   f"limit {limit} offset {offset}) x")
            async with self.conn.cursor(row_factory=dict_row) as cur:
                found = await (await cur.execute(sql, self.ctx.params.values)).fetchall()
            by_key: dict[tuple, list[dict]] = {}
            for row in found:
                by_key.setdefault(tuple(row[k] for k in key_cols), []).append(row)
            counts: dict[tuple, int] = {}
            if relation.many and child.count:  # $count=true inside $expand: each parent's related total
                sql = (f"select k.*, (select count(*) from {target.source(self.ctx)} c where {join} and "
                       f"{self._where(child, 'c')}) as n from unnest({', '.join(arrays)}) k({', '.join(key_cols)})")
                async with self.conn.cursor(row_factory=dict_row) as cur:
                    for row in await (await cur.execute(sql, self.ctx.params.values)).fetchall():
                        counts[tuple(row[k] for k in key_cols)] = row["n"]
            children = [r for group in by_key.values() for r in group[:child.top]]
            await self._expand(child, children)
            for row in rows:
                key = tuple(row[ours] for ours, _ in relation.pairs)
                row.setdefault("__expanded", {})[item.name] = (by_key.get(key, []), child, relation.many,
                                                               counts.get(key, 0))

    # -- JSON -------------------------------------------------------------------------------------------

    def self_link(self, entity: EntitySet, entity_id: str) -> str:
        return f"{self.base}/{entity.name}({quote_id(entity_id)})"

    def render(self, entity: EntitySet, row: dict, select: list[str] | None = None) -> dict:
        """The JSON of one entity: @iot.id, @iot.selfLink, its (selected) properties and navigation links."""
        out: dict = {}
        link = self.self_link(entity, row["id"])
        wanted = set(select) if select else None
        if wanted is None or "id" in wanted:
            out["@iot.id"] = row["id"]
        if wanted is None:
            out["@iot.selfLink"] = link
        for name, prop in entity.props.items():
            if name == "id" or (wanted is not None and name not in wanted):
                continue
            if prop.kind == "unit":
                out[name] = unit_of_measurement(row["domain"], row["metric"])
            elif prop.kind == "time":
                out[name] = iso(row[name]) if row[name] is not None else None
            elif prop.kind == "interval":  # an aggregated Observation's bucket: start/end
                end = row.get("phenomenon_end")
                out[name] = iso(row[name]) + ("/" + iso(end) if end is not None else "")
            elif prop.kind == "json" and isinstance(row[name], str):
                out[name] = json.loads(row[name])
            else:
                out[name] = row[name]
        expanded = row.get("__expanded", {})
        for name, _relation in entity.relations.items():
            if name in expanded:
                group, child, many, total = expanded[name]
                target = child.entity
                if many and child.count:
                    out[f"{name}@iot.count"] = total
                if many:
                    out[name] = [self.render(target, r, child.select) for r in group[:child.top]]
                    if len(group) > child.top > 0:
                        params = {"$top": child.top, "$skip": child.skip + child.top}
                        if child.filter_text:
                            params["$filter"] = child.filter_text
                        out[f"{name}@iot.nextLink"] = f"{link}/{name}?{urlencode(params, quote_via=quote)}"
                else:
                    out[name] = self.render(target, group[0], child.select) if group else None
            elif wanted is None or name in wanted:
                out[f"{name}@iot.navigationLink"] = f"{link}/{name}"
        return out


def key_columns(entity_set: str, entity_id: str) -> dict[str, object]:
    """The indexed columns an id stands for (``device:metric[:microseconds]``), so that finding one entity by
    its id is an index lookup rather than a scan computing every id."""
    parts = entity_id.split(":")
    series = "raw"
    if len(parts) >= 3 and parts[2] in SERIES:  # an aggregated Datastream (sensor:metric:1h) or its Observation
        series = parts.pop(2)
    if entity_set == "Datastreams" and len(parts) == 2:
        return {"device_id": parts[0], "metric": parts[1], "series": series}
    if entity_set == "Observations" and len(parts) == 3 and parts[2].isdigit() and len(parts[2]) <= 16:
        at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(parts[2]))
        return {"device_id": parts[0], "metric": parts[1], "phenomenon_time": at, "series": series}
    return {}


def unit_of_measurement(domain: str, metric: str) -> dict:
    """The Datastream's unit from the metric catalog (``cityos.ingest.catalog``); free environment metrics have
    none there, so their unit is blank."""
    spec = field_for(domain, metric) if domain in DOMAINS else None
    symbol = spec.unit if spec else ""
    return {"name": symbol or metric, "symbol": symbol,
            "definition": f"http://unitsofmeasure.org/ucum.html#{quote(symbol)}" if symbol else ""}


def next_link(base_url: str, query: dict[str, str], options: Options) -> str:
    """The link of the next page: the same request with ``$skip`` moved on by ``$top``."""
    params = {k: v for k, v in query.items() if k not in ("$skip", "$top")}
    params["$top"] = str(options.top)
    params["$skip"] = str(options.skip + options.top)
    return f"{base_url}?{urlencode(params, quote_via=quote, safe='$')}"


__all__ = ["PREFIX", "Params", "Reader", "next_link", "quote_id", "unit_of_measurement"]
