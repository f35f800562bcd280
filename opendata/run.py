"""A publish run: build every (due) dataset, pass the gate, publish to CKAN, log and audit what happened.

Used by ``cityos publish`` (by hand or from the systemd timer) and by the tests.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from cityos.opendata.anonymise import GateError
from cityos.opendata.build import BuiltDataset, build, exit_use, gate
from cityos.opendata.builders import READS
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


#: Late days per raw table: (UTC day, when late readings for it last arrived).
LateArrivals = dict[str, list[tuple[date, datetime]]]


def late_arrivals(conn: psycopg.Connection) -> LateArrivals:
    """The days of raw telemetry that received late readings (written by ingest with the rows)."""
    out: LateArrivals = {}
    for source, day, arrived_at in conn.execute("select source, day, arrived_at from cityos_meta.late_arrivals"):
        out.setdefault(source, []).append((day, arrived_at))
    return out


def period(definition: Dataset) -> timedelta | None:
    """How far back a dataset's data reach (its ``days`` or ``months`` parameter); None: unbounded."""
    params = definition.source.params
    if "days" in params:
        return timedelta(days=int(params["days"]))
    if "months" in params:
        return timedelta(days=31 * int(params["months"]))
    return None


def received_late_data(definition: Dataset, published: datetime, now: datetime, late: LateArrivals) -> bool:
    """Whether a table the dataset's builder reads received late readings for a day of its period after
    ``published`` (the dataset's last publish)."""
    back = period(definition)
    first = (now - back - timedelta(days=1)).date() if back else date.min
    return any(arrived > published and day >= first
               for source in READS.get(definition.source.builder, ()) for day, arrived in late.get(source, ()))


def due(definitions: list[Dataset], last: dict[str, datetime], now: datetime,
        late: LateArrivals | None = None) -> list[Dataset]:
    """The datasets whose schedule says they should be published again at ``now``, and those whose period
    received late data since they were last published."""
    return [d for d in definitions if d.name not in last or now - last[d.name] >= d.interval
            or (late and received_late_data(d, last[d.name], now, late))]


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
            definitions = due(definitions, last_published(conn), now, late_arrivals(conn))
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
            found = by_name.get(result.name)
            _log(conn, who, run_id, found, result.name, result.status, result.changes, result.error or result.note,
                 found.rows if found else None)
    return RunReport(run_id, results)
