"""What the connected server can do: TimescaleDB edition and features, PostGIS version.

The Apache-only TimescaleDB build (Debian's) has hypertables and ``time_bucket`` but no
compression, continuous aggregates or job policies; a community build (timescaledb-ha in
production) has them. The platform detects the edition and never assumes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import psycopg

from cityos.platform.db.connection import connect
from cityos.platform.db.scalar import scalar


@dataclass(frozen=True)
class ServerFeatures:
    """Capabilities of the database server the platform is connected to."""

    server_version: str
    timescaledb_version: str | None
    timescaledb_license: str | None
    postgis_version: str | None

    @property
    def community(self) -> bool:
        """True when TimescaleDB's community features (compression, caggs, policies) exist."""
        return self.timescaledb_license == "timescale"

    @property
    def active_features(self) -> list[str]:
        """Features the platform uses on this server."""
        if not self.timescaledb_version:
            return []
        base = ["hypertables", "time_bucket"]
        if self.community:
            return [*base, "compression", "continuous_aggregates", "retention_policy"]
        return [*base, "platform_retention(drop_chunks)", "platform_rollups"]


def detect(conn: psycopg.Connection) -> ServerFeatures:
    """Read the server's capabilities over ``conn``."""
    version = scalar(conn.execute("show server_version"))
    exts: dict[str, str] = dict(conn.execute(
        "select extname, extversion from pg_extension where extname in ('timescaledb', 'postgis')"
    ).fetchall())
    license_ = None
    if "timescaledb" in exts:
        license_ = scalar(conn.execute("select current_setting('timescaledb.license', true)"))
    return ServerFeatures(version.split()[0], exts.get("timescaledb"), license_, exts.get("postgis"))


def describe_server(url: str) -> dict[str, object]:
    """Version and features of the server at ``url``, for ``cityos status`` and ``/readyz``."""
    with connect(url, timeout=3) as conn:
        feats = detect(conn)
        applied = None
        if scalar(conn.execute("select to_regclass('cityos_meta.schema_migrations')")):
            applied = scalar(conn.execute("select max(version) from cityos_meta.schema_migrations"))
    info = asdict(feats)
    info["timescaledb_features"] = feats.active_features
    info["schema_version"] = applied
    return info
