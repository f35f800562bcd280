"""Durable batch writes: rows with COPY, dead letters, one transaction per batch.

The fast path COPYs straight into the hypertables, in PostgreSQL's binary format: formatting a
timestamp as text costs the client more than everything else about a row (binary COPY is about
five times faster here), and the server parses nothing. A unique violation means a reading was
delivered again (after a crash or broker restart); the batch is then rewritten through a
staging table with ``ON CONFLICT DO NOTHING``, so re-delivery never makes duplicate rows and the
common case pays nothing for it.

The same transaction accounts for the batch (unless ``Batch.accounting`` is off): one upsert of
the per-device ledger (``core.device_ledger``: messages, readings stored, duplicates, late readings,
refusals by reason, newest observation), the roll-up buckets the rows touched
(``cityos_meta.rollup_dirty``, see :mod:`cityos.platform.db.rollups`) and the days that received late
readings (``cityos_meta.late_arrivals``). After a crash the counts and the rows agree exactly.
"""

from __future__ import annotations

import operator
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.types import TypeInfo
from psycopg.types.json import Jsonb

from cityos.ingest.rows import VEHICLES as VEHICLE_TABLE
from cityos.platform.db.rollups import mark_dirty, rollups_of

#: Columns as written by COPY: name -> PostgreSQL type (binary COPY applies no casts: they must match).
Columns = dict[str, str]

METRIC_COLUMNS: Columns = {"time": "timestamptz", "device_id": "text", "metric": "text", "value": "float8"}

#: table -> columns written; every table's key makes re-delivery idempotent.
TABLE_COLUMNS: dict[str, Columns] = {
    "telemetry.vehicle_positions": {
        "time": "timestamptz", "device_id": "text", "geom": "geometry", "speed_kmh": "float4",
        "heading_deg": "float4", "gps_error_m": "float4", "accel_long": "float4", "accel_trans": "float4",
        "accel_vert": "float4", "role": "text", "blade_down": "bool"},
    "telemetry.energy_readings": METRIC_COLUMNS,
    "telemetry.health_readings": {**METRIC_COLUMNS, "label": "text"},
    "telemetry.measurements": METRIC_COLUMNS,
}
DEAD_LETTER_COLUMNS: Columns = {"topic": "text", "payload": "bytea", "reason": "text", "detail": "text",
                                "client_id": "text", "device_id": "text", "received_at": "timestamptz"}
LATEST_VALUE_COLUMNS: Columns = {"device_id": "text", "metric": "text", "time": "timestamptz", "value": "float8",
                                 "label": "text"}
LATEST_POSITION_COLUMNS: Columns = {"device_id": "text", "time": "timestamptz", "geom": "geometry",
                                    "speed_kmh": "float4", "heading_deg": "float4", "role": "text",
                                    "blade_down": "bool"}

_EWKB_POINT = struct.Struct("<BIIdd")  # little endian, type Point with SRID flag, SRID, x, y
_POINT_WITH_SRID = 0x20000001


def ewkb_point(lon: float, lat: float, srid: int = 4326) -> bytes:
    """A PostGIS point as EWKB: what the binary COPY of a ``geometry`` column reads."""
    return _EWKB_POINT.pack(1, _POINT_WITH_SRID, srid, lon, lat)


class _EwkbDumper(Dumper):
    """Passes EWKB bytes through as a binary ``geometry`` value (its oid is set per database)."""

    format = Format.BINARY

    def dump(self, obj: bytes) -> bytes:
        return obj


def _geometry_oid(cur: psycopg.Cursor) -> int:
    """The oid of PostGIS's ``geometry`` in this database (an extension type's oid differs per database).

    Registered with the connection (for later cursors) and with ``cur``, which copied the connection's
    adapters when it was made.
    """
    info = cur.adapters.types.get("geometry")
    if info is None:
        info = TypeInfo.fetch(cur.connection, "geometry")
        if info is None:
            raise RuntimeError("PostGIS is not installed in this database")
        dumper = type("GeometryDumper", (_EwkbDumper,), {"oid": info.oid})
        for context in (cur.connection, cur):
            info.register(context)
            context.adapters.register_dumper(None, dumper)
    return info.oid


def _copy_types(cur: psycopg.Cursor, types: Sequence[str]) -> list[int | str]:
    """``types`` for ``Copy.set_types``, with ``geometry`` as its oid."""
    if "geometry" not in types:
        return list(types)
    oid = _geometry_oid(cur)
    return [oid if t == "geometry" else t for t in types]


@dataclass(frozen=True)
class DeadLetter:
    """A rejected message, kept with its reason so nothing is dropped silently."""

    topic: str
    payload: bytes
    reason: str
    detail: str = ""
    client_id: str | None = None
    device_id: str | None = None


@dataclass
class Batch:
    """Everything one transaction writes."""

    rows: dict[str, list[tuple]] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    #: When the messages arrived (the ``now`` their times were judged at); None: the time of writing.
    received_at: datetime | None = None
    #: Write the ledger, the touched roll-up buckets and the late days (``CITYOS_INGEST_ACCOUNTING``).
    accounting: bool = True
    #: device -> [messages, readings, late readings, newest observation] of the messages added.
    tally: dict[str, list] = field(default_factory=dict)
    #: table -> (oldest, newest, late) of each message's rows (the roll-up buckets and late days they touch).
    spans: dict[str, list[tuple[datetime, datetime, int]]] = field(default_factory=dict)
    #: Sequence numbers of the readings in ``rows``, per stream (device_id, domain): ``cityos.ingest.gaps``.
    sequences: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def add_rows(self, table: str, rows: Iterable[tuple]) -> None:
        self.rows.setdefault(table, []).extend(rows)

    def add_outcome(self, outcome, *, count_message: bool = True) -> None:
        """Add one message's rows or dead letter (a :class:`cityos.ingest.pipeline.MessageOutcome`) and its
        accounting. ``count_message`` False: a replayed dead letter, whose delivery was counted when it came."""
        if outcome.dead_letter is not None:
            self.dead_letters.append(outcome.dead_letter)
            return
        if outcome.sequences:  # a stored message fills its readings' place in their stream
            self.add_sequences(outcome.stream, outcome.sequences)
        readings = late = 0
        newest = None
        for table, rows in outcome.rows.items():
            self.rows.setdefault(table, []).extend(rows)
            span = outcome.spans.get(table)
            if span is not None:
                self.spans.setdefault(table, []).append(span)
                late += span[2]
                newest = span[1] if newest is None or span[1] > newest else newest
            readings += len(rows)
        entry = self.tally.get(outcome.device_id or "")
        if entry is None:
            self.tally[outcome.device_id or ""] = [int(count_message), readings, late, newest]
            return
        entry[0] += count_message
        entry[1] += readings
        entry[2] += late
        if newest is not None and (entry[3] is None or newest > entry[3]):
            entry[3] = newest

    def add_sequences(self, stream: tuple[str, str], numbers: Iterable[int]) -> None:
        self.sequences.setdefault(stream, []).extend(numbers)

    @property
    def row_count(self) -> int:
        return sum(len(r) for r in self.rows.values())


def vehicle_tuple(row) -> tuple:
    """A vehicle row as COPY values (the point as EWKB)."""
    return (row.time, row.device_id, ewkb_point(row.lon, row.lat), row.speed_kmh, row.heading_deg,
            row.gps_error_m, row.accel_long, row.accel_trans, row.accel_vert, row.role, row.blade_down)


def metric_tuple(row, with_label: bool) -> tuple:
    """A metric row as COPY values."""
    if with_label:
        return (row.time, row.device_id, row.metric, row.value, row.label)
    return (row.time, row.device_id, row.metric, row.value)


def _copy(cur: psycopg.Cursor, table: str, columns: Columns, rows: list[tuple]) -> None:
    """COPY ``rows`` (values in the order of ``columns``) into ``table`` in the binary format."""
    oids = _copy_types(cur, list(columns.values()))
    with cur.copy(f"copy {table} ({', '.join(columns)}) from stdin (format binary)") as copy:
        copy.set_types(oids)
        write = copy.write_row
        for row in rows:
            write(row)


def _copy_idempotent(cur: psycopg.Cursor, table: str, columns: Columns, rows: list[tuple]) -> Counter[str]:
    """COPY through a staging table, skipping rows already stored; rows written per device."""
    stage = "stage_" + table.split(".")[-1]
    cur.execute(f"create temp table if not exists {stage} (like {table} including defaults) on commit delete rows")
    _copy(cur, stage, columns, rows)
    cols = ", ".join(columns)
    cur.execute(f"with written as (insert into {table} ({cols}) select {cols} from {stage} on conflict do nothing "
                "returning device_id) select device_id, count(*) from written group by 1")
    return Counter(dict(cur.fetchall()))


def _write_dead_letters(cur: psycopg.Cursor, letters: list[DeadLetter], received_at: datetime | None) -> None:
    # The arrival instant is the one the time window was judged at (the worker's clock), so a replay
    # judges the letter's times exactly as the worker did, whatever the database server's clock says.
    if letters:
        at = received_at or datetime.now(UTC)
        _copy(cur, "core.dead_letters", DEAD_LETTER_COLUMNS,
              [(d.topic, bytes(d.payload), d.reason, d.detail, d.client_id, d.device_id, at) for d in letters])


def _picker(source: Columns, names: Sequence[str]) -> Callable[[tuple], Any]:
    """Takes ``names``, by name, out of a COPY tuple of ``source``'s columns (a name it lacks: None)."""
    index = {name: i for i, name in enumerate(source)}
    get = operator.itemgetter(*(index.get(name, len(source)) for name in names))
    if all(name in index for name in names):
        return get
    return lambda row: get((*row, None))


_TIME = {table: _picker(columns, ["time"]) for table, columns in TABLE_COLUMNS.items()}
_KEY = {table: _picker(columns, ["device_id"] if table == VEHICLE_TABLE else ["device_id", "metric"])
        for table, columns in TABLE_COLUMNS.items()}
_LATEST = {table: _picker(columns, list(LATEST_POSITION_COLUMNS if table == VEHICLE_TABLE else LATEST_VALUE_COLUMNS))
           for table, columns in TABLE_COLUMNS.items()}


def latest_of(batch: Batch) -> tuple[list[tuple], list[tuple]]:
    """The newest metric value per (device, metric) and position per device in ``batch``.

    Columns are taken by name (a table's :data:`TABLE_COLUMNS` to the latest tables' columns), not by
    position, so a column added to a table cannot shift what lands in the latest tables.
    """
    values: dict[object, tuple] = {}
    positions: dict[object, tuple] = {}
    newest: dict[object, datetime] = {}
    for table, rows in batch.rows.items():
        latest = positions if table == VEHICLE_TABLE else values
        time_of, key_of, pick = _TIME[table], _KEY[table], _LATEST[table]
        for r in rows:
            key, t = key_of(r), time_of(r)
            if key not in latest or t > newest[key]:
                latest[key] = pick(r)
                newest[key] = t
    return list(values.values()), list(positions.values())


UPSERT_LATEST_VALUES = """
    insert into telemetry.latest_values (device_id, metric, time, value, label)
    select device_id, metric, time, value, label from stage_latest_values order by device_id, metric
    on conflict (device_id, metric) do update set time = excluded.time, value = excluded.value, label = excluded.label
    where excluded.time > telemetry.latest_values.time"""

UPSERT_LATEST_POSITIONS = """
    insert into telemetry.latest_positions (device_id, time, geom, speed_kmh, heading_deg, role, blade_down)
    select device_id, time, geom, speed_kmh, heading_deg, role, blade_down from stage_latest_positions
    order by device_id
    on conflict (device_id) do update set time = excluded.time, geom = excluded.geom, speed_kmh = excluded.speed_kmh,
        heading_deg = excluded.heading_deg, role = excluded.role, blade_down = excluded.blade_down
    where excluded.time > telemetry.latest_positions.time"""


def _write_latest(cur: psycopg.Cursor, batch: Batch) -> None:
    values, positions = latest_of(batch)
    for rows, table, columns, upsert in (
        (values, "latest_values", LATEST_VALUE_COLUMNS, UPSERT_LATEST_VALUES),
        (positions, "latest_positions", LATEST_POSITION_COLUMNS, UPSERT_LATEST_POSITIONS),
    ):
        if rows:
            cur.execute(f"create temp table if not exists stage_{table} (like telemetry.{table}) "
                        "on commit delete rows")
            _copy(cur, f"stage_{table}", columns, sorted(rows))
            cur.execute(upsert)


UPSERT_LEDGER = """
    insert into core.device_ledger as l (device_id, hour, messages, stored, duplicates, late, refused, newest)
    select * from unnest(%s::text[], %s::timestamptz[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[],
                         %s::jsonb[], %s::timestamptz[]) order by 1
    on conflict (device_id, hour) do update set
        messages = l.messages + excluded.messages, stored = l.stored + excluded.stored,
        duplicates = l.duplicates + excluded.duplicates, late = l.late + excluded.late,
        refused = case when excluded.refused = '{}'::jsonb then l.refused
                       else core.jsonb_add_counts(l.refused, excluded.refused) end,
        newest = greatest(l.newest, excluded.newest)"""

UPSERT_LATE_DAYS = """
    insert into cityos_meta.late_arrivals (source, day, arrived_at)
    select source, day, now() from unnest(%s::text[], %s::date[]) as d(source, day) order by 1, 2
    on conflict (source, day) do update set arrived_at = greatest(cityos_meta.late_arrivals.arrived_at,
                                                                  excluded.arrived_at)"""


def _ledger_rows(batch: Batch, hour: datetime, written: Counter[str] | None) -> list[list]:
    """The ledger's columns (as arrays) for the batch; ``written``: rows stored per device when some were
    duplicates (None: every row was new)."""
    refused: dict[str, Counter[str]] = {}
    for letter in batch.dead_letters:
        refused.setdefault(letter.device_id or "", Counter())[letter.reason] += 1
    columns: list[list] = [[], [], [], [], [], [], [], []]
    for device in sorted(batch.tally.keys() | refused.keys()):
        messages, readings, late, newest = batch.tally.get(device, (0, 0, 0, None))
        reasons = refused.get(device)
        if reasons:
            messages += sum(reasons.values())
        stored = readings if written is None else min(readings, written.get(device, 0))
        for column, value in zip(columns, (device, hour, messages, stored, readings - stored, late,
                                           Jsonb(dict(reasons or {})), newest), strict=True):
            column.append(value)
    return columns


def _touched(batch: Batch) -> tuple[dict[str, set[datetime]], set[tuple[str, object]]]:
    """The roll-up buckets the batch's rows fall in, and the (table, UTC day) that received late readings."""
    buckets: dict[str, set[datetime]] = {}
    late_days: set[tuple[str, object]] = set()
    for table, rows in batch.rows.items():
        spans = batch.spans.get(table)
        if spans is None:  # rows added without their messages: one span over all of them
            times = list(map(itemgetter(0), rows))
            spans = [(min(times), max(times), 0)]
        for rollup in rollups_of(table):
            marks = buckets.setdefault(rollup.name, set())
            width = rollup.width
            for oldest, newest, _late in spans:
                bucket = rollup.bucket_of(oldest)
                while bucket <= newest:
                    marks.add(bucket)
                    bucket += width
        for oldest, newest, late in spans:
            if late:
                day = oldest.astimezone(UTC).date()
                while day <= newest.astimezone(UTC).date():
                    late_days.add((table, day))
                    day += timedelta(days=1)
    return buckets, late_days


def _account(cur: psycopg.Cursor, batch: Batch, written: Counter[str] | None) -> None:
    """The batch's ledger rows, touched roll-up buckets and late days, in the batch's transaction."""
    if not batch.accounting:
        return
    at = batch.received_at or datetime.now(UTC)
    columns = _ledger_rows(batch, at.replace(minute=0, second=0, microsecond=0), written)
    if columns[0]:
        cur.execute(UPSERT_LEDGER, columns)
    buckets, late_days = _touched(batch)
    mark_dirty(cur, buckets)
    if late_days:
        days = sorted(late_days)
        # the database's clock, as the publish log's: a dataset is due when late data came after its last publish
        cur.execute(UPSERT_LATE_DAYS, ([d[0] for d in days], [d[1] for d in days]))


def _write_sequences(cur: psycopg.Cursor, batch: Batch) -> None:
    """The streams' highest sequence numbers and gaps (``cityos.ingest.gaps``), with the rows they count."""
    if batch.sequences:
        from cityos.ingest.gaps import record_sequences

        record_sequences(cur, batch.sequences, batch.received_at or datetime.now(UTC))


def write_batch(conn: psycopg.Connection, batch: Batch) -> int:
    """Commit ``batch`` in one transaction; new rows written (duplicates of stored rows are skipped).

    The latest value of each device and metric, and the batch's accounting, are written in the same
    transaction.
    """
    if not batch.rows and not batch.dead_letters and not batch.tally:
        return 0
    try:
        with conn.transaction(), conn.cursor() as cur:
            for table, rows in batch.rows.items():
                _copy(cur, table, TABLE_COLUMNS[table], rows)
            _write_latest(cur, batch)
            _write_dead_letters(cur, batch.dead_letters, batch.received_at)
            _account(cur, batch, None)
            _write_sequences(cur, batch)
        return batch.row_count
    except psycopg.errors.UniqueViolation:
        pass
    written: Counter[str] = Counter()
    with conn.transaction(), conn.cursor() as cur:
        for table, rows in batch.rows.items():
            written.update(_copy_idempotent(cur, table, TABLE_COLUMNS[table], rows))
        _write_latest(cur, batch)
        _write_dead_letters(cur, batch.dead_letters, batch.received_at)
        _account(cur, batch, written)
        _write_sequences(cur, batch)
    return sum(written.values())
