"""The one value of a query that always returns one row (an aggregate, ``show``, ``to_regclass``, ``returning``)."""

from __future__ import annotations

from typing import Any

import psycopg


def scalar(cursor: psycopg.Cursor[Any]) -> Any:
    """The first column of the cursor's one row; LookupError if the query returned none (a bug in the query)."""
    row = cursor.fetchone()
    if row is None:
        raise LookupError("the query returned no row")
    return row[0]
