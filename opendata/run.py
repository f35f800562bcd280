"""A publish run: build every (due) dataset, pass the gate, publish to CKAN, log and audit what happened.

Used by ``cityos publish`` (by hand or from the systemd timer) and by the tests.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from cityos.opendata.anonymise import GateError
from cityos.opendata.build import BuiltDataset, build, exit_use, gate
from cityos.opendata.definitions import DATASETS_DIR, Dataset, load_definitions, load_portal
from cityos.opendata.publisher import Change, DatasetResult, connect, publish
from cityos.platform.audit import Who, access_of, record
from cityos.platform.db.connection import connect as connect_db
from cityos.platform.settings import Settings


class PublishError(RuntimeError):
    """The run could not start (no portal configured, no database)."""


@dataclass
class RunReport:
    """The outcome of a run."""

    run_id: uuid.UUID
    results: list[DatasetResult]

    @property
    def failed(self) -> list[DatasetResult]:
        return [r for r in self.results if r.status == "failed"]


def last_published(conn: psycopg.Connection) -> dict[str, datetime]:
    """When each dataset was last published successfully (published or found unchanged)."""
    return dict(conn.execute("select dataset, max(at) from opendata.publish_log "
                             "where status in ('published', 'unchanged') group by dataset").fetchall())


def due(definitions: list[Dataset], last: dict[str, datetime], now: datetime) -> list[Dataset]:
    """The datasets whose schedule says they should be published again at ``now``."""
    return [d for d in definitions if d.name not in last or now - last[d.name] >= d.interval]


def city_extent(conn: psycopg.Connection) -> dict | None:
    """The bounding box of the city's districts as a GeoJSON polygon (CKAN's ``spatial`` extra)."""
    row = conn.execute("select st_asgeojson(st_envelope(st_extent(geom)), 5) from gis.districts").fetchone()
    return json.loads(row[0]) if row and row[0] else None


def build_all(conn: psycopg.Connection, definitions: list[Dataset], settings: Settings,
              now: datetime | None = None, folder: Path = DATASETS_DIR) -> list[BuiltDataset]:
    """Build ``definitions`` (nothing is uploaded)."""
    portal = load_portal(folder)
    return [build(conn, d, portal, k=settings.k_anonymity, public_base_url=settings.api_url, now=now,
                  timezone=settings.timezone) for d in definitions]


def _log(conn: psycopg.Connection, who: Who, run_id: uuid.UUID, built: BuiltDataset | None, name: str, status: str,
         changes: list[Change], error: str = "", rows: int | None = None) -> None:
    """The publish log's row and the audit row (who ran it: the OS user, or the job that did)."""
    conn.execute("insert into opendata.publish_log (run_id, dataset, status, changes, error, rows) "
                 "values (%s, %s, %s, %s, %s, %s)",
                 (run_id, name, status, Jsonb([c.as_json() for c in changes]), error, rows))
    use = exit_use(built.definition) if built else None
    subject = (f"residents with {use.category}/{use.purpose} consent" if use and use.basis == "consent"
               else use.basis if use else "")
    record(conn, who, f"publish:{status}", f"opendata/{name}", role="publish", subject=subject,
           reason=access_of("cli:publish").why,
           detail={"run_id": str(run_id), "changes": len(changes), "error": error[:500],
                   "contributors": built.contributors if built else None})


def run(settings: Settings, *, only: list[str] | None = None, dry_run: bool = False, due_only: bool = False,
        now: datetime | None = None, folder: Path = DATASETS_DIR,
        on_change: Callable[[Change], None] | None = None,
        wrap_client: Callable | None = None, who: Who | None = None) -> RunReport:
    """Build, gate and publish; raises :class:`GateError` (uploading nothing) when any dataset breaks its rules.
    Each dataset's audit row names ``who`` (default: the OS user, or ``CITYOS_JOB_NAME`` for the timer)."""
    who = who or Who.cli()
    if not settings.ckan_url:
        raise PublishError("no CKAN portal: run `cityos up` (local CKAN) or set CITYOS_CKAN_URL and CITYOS_CKAN_TOKEN")
    now = now or datetime.now(UTC)
    run_id = uuid.uuid4()
    portal = load_portal(folder)
    with connect_db(settings.database_url, autocommit=True) as conn:
        definitions = load_definitions(folder, only)
        if due_only:
            definitions = due(definitions, last_published(conn), now)
        built = build_all(conn, definitions, settings, now, folder)
        try:
            gate(built)
        except GateError as refused:
            for item in built:
                _log(conn, who, run_id, item, item.definition.name, "refused", [], "; ".join(item.violations),
                     item.rows)
            raise refused
        ckan = connect(settings.ckan_url, settings.ckan_token)
        if wrap_client:
            ckan = wrap_client(ckan)
        results = publish(ckan, built, portal, spatial=city_extent(conn), dry_run=dry_run, on_change=on_change)
        by_name = {b.definition.name: b for b in built}
        for result in results:
            item = by_name.get(result.name)
            _log(conn, who, run_id, item, result.name, result.status, result.changes, result.error or result.note,
                 item.rows if item else None)
    return RunReport(run_id, results)
