"""Tables of declared layers that no migration creates, made from their declarations.

A layer added by one file in ``gis/layers/`` (``migration=None``) gets its table here: created when
missing, with a GiST index on ``geom``, and a column added when the declaration gains one (never
dropped or retyped: that is a migration's job); a table that has every declared column is not touched.
Run after the migrations (:data:`cityos.platform.db.migrate.AFTER_MIGRATIONS`), idempotent. Layers whose
table a migration creates are compared with their declarations by
``tests/integration/test_gis_declarations.py``.
"""

from __future__ import annotations

import re

import psycopg

from cityos.gis.declarations import Layer, layers

_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")
_TYPES = {"text", "integer", "bigint", "double precision", "real", "boolean", "date", "jsonb",
          "timestamp with time zone"}


def _column_sql(column, key: bool = False) -> str:
    if not _NAME.match(column.name) or column.type not in _TYPES:
        raise ValueError(f"column {column.name!r} of type {column.type!r}: a lower-case name and one of "
                         f"{', '.join(sorted(_TYPES))}")
    if key:
        return f"{column.name} {column.type} primary key"
    default = {"text": " default ''", "jsonb": " default '{}'::jsonb"}.get(column.type, "") if column.not_null else ""
    return f"{column.name} {column.type}{' not null' if column.not_null else ''}{default}"


def table_ddl(layer: Layer, existing: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """The statements that create ``layer``'s table (when ``existing``, its present columns, is empty) or add
    the declared columns it lacks; nothing when it has them all (no lock is taken on a live table)."""
    if not _NAME.match(layer.table) or "." not in layer.table:
        raise ValueError(f"layer {layer.id}: table {layer.table!r} must be schema.name in lower case")
    if existing:
        return [f"alter table {layer.table} add column {_column_sql(c)}" for c in layer.columns
                if c.name not in existing]
    columns = [_column_sql(c, key=c.name == layer.key) for c in layer.columns]
    if layer.geometry:
        columns.append(f"geom geometry({layer.geometry}, 4326) not null")
    statements = [f"create table {layer.table} ({', '.join(columns)})"]
    if layer.geometry:
        name = layer.table.split(".")[1]
        statements.append(f"create index {name}_geom_idx on {layer.table} using gist (geom)")
    return statements


def ensure_tables(conn: psycopg.Connection) -> list[str]:
    """Create or extend the tables of declared layers without a migration; the tables changed."""
    done = []
    for layer in layers().values():
        if layer.migration is not None:
            continue
        existing = {name for (name,) in conn.execute(
            "select attname from pg_attribute where attrelid = to_regclass(%s) and attnum > 0 "
            "and not attisdropped", (layer.table,)).fetchall()}
        statements = table_ddl(layer, existing)
        if statements:
            with conn.transaction():
                for statement in statements:
                    conn.execute(statement)
            done.append(layer.table)
    return done
