"""A Solr-shaped search index kept in CKAN's own PostgreSQL database.

:class:`PgSolr` has the methods of ``pysolr.Solr`` that CKAN calls (``add``, ``delete``,
``commit``, ``search``); documents are stored whole as jsonb rows, keyed by CKAN's ``index_id``,
with their text for free-text search. Queries are translated by :mod:`.lucene`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ckanext.cityos_pgsearch import lucene
from sqlalchemy.engine import Engine

SCHEMA = """
create table if not exists cityos_search (
    index_id text primary key,
    doc      jsonb not null,
    body     text not null
);
create or replace function cityos_search_values(doc jsonb, field text) returns setof text
language sql immutable as $$
    select case jsonb_typeof(v) when 'string' then v #>> '{}' else v::text end
    from jsonb_array_elements(case jsonb_typeof(doc -> field)
                                  when 'array' then doc -> field
                                  when 'null' then '[]'::jsonb
                                  else jsonb_build_array(doc -> field) end) v
    where doc ? field
$$;
"""


@dataclass
class Results:
    """What ``pysolr.Solr.search`` returns, as far as CKAN reads it."""

    docs: list[dict]
    hits: int
    facets: dict = field(default_factory=dict)
    raw_response: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.docs)

    def __iter__(self):
        return iter(self.docs)


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _texts(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    return [] if value is None else [str(value)]


def searchable_text(doc: dict) -> str:
    """The text free-text queries match (lower-cased), from the fields Solr copies into ``text``."""
    skip = {"data_dict", "validated_data_dict", "index_id", "site_id", "permission_labels", "id"}
    return " ".join(t for key, value in doc.items() if key not in skip for t in _texts(value)).lower()


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v]
    return [str(value)] if value else []


class PgSolr:
    """Stands in for ``pysolr.Solr``: the index lives in table ``cityos_search``."""

    def __init__(self, engine: Engine, url: str = "postgresql://cityos-search"):
        self.engine = engine
        self.url = url

    def ensure_schema(self) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(SCHEMA)

    def add(self, docs: list[dict], commit: bool = True, **_: Any) -> None:
        with self.engine.begin() as conn:
            for doc in docs:
                key = doc.get("index_id") or doc["id"]
                conn.exec_driver_sql(
                    "insert into cityos_search (index_id, doc, body) values (%(k)s, %(d)s::jsonb, %(b)s) "
                    "on conflict (index_id) do update set doc = excluded.doc, body = excluded.body",
                    {"k": key, "d": json.dumps(doc, default=str), "b": searchable_text(doc)})

    def delete(self, id: str | None = None, q: str | None = None, commit: bool = True, **_: Any) -> None:
        with self.engine.begin() as conn:
            if id is not None:
                conn.exec_driver_sql("delete from cityos_search where index_id = %(k)s or doc->>'id' = %(k)s",
                                     {"k": id})
            if q is not None:
                where, params = lucene.to_sql(q)
                conn.exec_driver_sql(f"delete from cityos_search where {where}", params)

    def commit(self, **_: Any) -> None:
        """Every write is committed when made."""

    def search(self, q: str = "*:*", **params: Any) -> Results:
        """Solr's search over the PostgreSQL index; a query outside the syntax raises CKAN's
        SearchQueryError, which the action API answers with 400 "Search Query is invalid" (not 500)."""
        from ckan.lib.search.common import SearchQueryError

        try:
            return self._search(q, **params)
        except lucene.QueryError as exc:
            raise SearchQueryError(str(exc)) from exc

    def _search(self, q: str, **params: Any) -> Results:
        sql = lucene.Sql()
        default_op = str(params.get("q.op", "AND")).upper()
        conditions = [lucene.to_sql(q, sql, default_field=params.get("df", "text"), default_op=default_op)[0]]
        for fq in _list(params.get("fq")):
            conditions.append(lucene.to_sql(fq, sql, default_op="AND")[0])
        where = " AND ".join(f"({c})" for c in conditions)
        rows = int(params.get("rows", 10) or 0)
        start = int(params.get("start", 0) or 0)
        order = lucene.sort_sql(params.get("sort"))
        fields = [f for f in str(params.get("fl", "*")).replace(",", " ").split() if f != "score"]
        with self.engine.connect() as conn:
            hits = conn.exec_driver_sql(f"select count(*) from cityos_search where {where}", sql.params).scalar()
            docs = [row[0] for row in conn.exec_driver_sql(
                f"select doc from cityos_search where {where} order by {order} limit {max(rows, 0)} offset {start}",
                sql.params)]
            facets = {}
            if str(params.get("facet", "false")).lower() == "true":
                limit = int(params.get("facet.limit", 50) or 50)
                mincount = int(params.get("facet.mincount", 1) or 1)
                for name in _list(params.get("facet.field")):
                    counts = conn.exec_driver_sql(
                        "select v, count(*) from cityos_search, cityos_search_values(doc, %(facet)s) v "
                        f"where {where} group by v having count(*) >= %(mincount)s order by count(*) desc, v "
                        + ("" if limit < 0 else f"limit {limit}"),
                        {**sql.params, "facet": name, "mincount": mincount}).fetchall()
                    facets[name] = [item for v, n in counts for item in (v, n)]
        if fields and "*" not in fields:
            docs = [{k: d[k] for k in fields if k in d} for d in docs]
        return Results(docs, int(hits or 0), {"facet_fields": facets})
