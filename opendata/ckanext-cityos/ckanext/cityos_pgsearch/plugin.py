"""The CKAN plugin: swaps Solr for the PostgreSQL index in CKAN's search modules.

CKAN still builds the Solr documents and queries; only the connection object returned by
``make_connection`` (in ``ckan.lib.search`` common, index and query) is replaced, and the Solr
schema-version check at start-up answers yes. Enable with ``ckan.plugins = cityos_pgsearch``;
``solr_url`` may be any placeholder.
"""

from __future__ import annotations

from typing import Any

import ckan.plugins as plugins
from ckan.lib import search
from ckan.lib.search import common, index, query
from ckan.model import meta
from ckanext.cityos_pgsearch.store import PgSolr

_connection: PgSolr | None = None


def make_connection(decode_dates: bool = True) -> PgSolr:
    """The PostgreSQL index (one per process, sharing CKAN's SQLAlchemy engine)."""
    global _connection
    if _connection is None:
        _connection = PgSolr(meta.engine)
        _connection.ensure_schema()
    return _connection


def _schema_ok(*_: Any, **__: Any) -> bool:
    return True


def install() -> None:
    """Point CKAN's search modules at the PostgreSQL index."""
    for module in (search, common, index, query):
        module.make_connection = make_connection  # type: ignore[assignment]
    search.check_solr_schema_version = _schema_ok  # type: ignore[assignment]


install()  # at import: CKAN checks the Solr schema while loading the environment, after loading plugins


class PgSearchPlugin(plugins.SingletonPlugin):
    """Marker plugin; importing it installs the PostgreSQL search backend."""

    plugins.implements(plugins.IConfigurable)

    def configure(self, config: Any) -> None:
        install()
