"""The database is reached one way: connections come from ``cityos.platform.db.connection`` (pooled or
dedicated, see its docstring), never from ``psycopg.connect`` or a pool built elsewhere."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("platform", "ingest", "gis", "opendata", "deploy", "apps")
THE_ONE_PLACE = {Path("platform/db/connection.py"), Path("platform/db/pool.py")}
FORBIDDEN = {"connect", "ConnectionPool", "AsyncConnectionPool", "NullConnectionPool", "AsyncNullConnectionPool"}


def _direct_connections(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        text = ast.unparse(func)
        if ((isinstance(func, ast.Attribute) and func.attr in FORBIDDEN and "psycopg" in text)
                or text.endswith(("AsyncConnection.connect", "Connection.connect"))
                or (isinstance(func, ast.Name) and func.id in FORBIDDEN - {"connect"})):
            found.append(f"{name}:{node.lineno}: {text}")
    return found


def test_no_module_connects_to_postgresql_by_itself() -> None:
    offenders = []
    for folder in FOLDERS:
        for path in (REPO / folder).rglob("*.py"):
            if path.relative_to(REPO) in THE_ONE_PLACE or "ckanext" in path.parts or "node_modules" in path.parts:
                continue
            offenders += _direct_connections(path.read_text(), str(path.relative_to(REPO)))
    assert not offenders, "connect through cityos.platform.db.connection (connect/aconnect/dedicated):\n" + \
        "\n".join(offenders)


def test_the_check_sees_each_way_around_it() -> None:
    for call in ("psycopg.connect(url)", "psycopg.AsyncConnection.connect(url)", "ConnectionPool(url)",
                 "psycopg_pool.AsyncConnectionPool(url)"):
        assert _direct_connections(f"import psycopg\nx = {call}\n", "planted.py"), call
