"""Durable batch writes: rows with COPY, dead letters, one transaction per batch.

The fast path COPYs straight into the hypertables. A unique violation means a reading was
delivered again (after a crash or broker restart); the batch is then rewritten through a
staging table with ``ON CONFLICT DO NOTHING``, so re-delivery never makes duplicate rows and the
common case pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import psycopg

VEHICLE_COLUMNS = ("time", "device_id", "geom", "speed_kmh", "heading_deg", "gps_error_m",
                   "accel_long", "accel_trans", "accel_vert", "role", "blade_down")

#: table -> columns written; every table's key makes re-delivery idempotent.
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "telemetry.vehicle_positions": VEHICLE_COLUMNS,
    "telemetry.energy_readings": ("time", "device_id", "metric", "value"),
    "telemetry.health_readings": ("time", "device_id", "metric", "value", "label"),
    "telemetry.measurements": ("time", "device_id", "metric", "value"),
}


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

    def add_rows(self, table: str, rows: Iterable[tuple]) -> None:
        self.rows.setdefault(table, []).extend(rows)

    @property
    def row_count(self) -> int:
        return sum(len(r) for r in self.rows.values())


def vehicle_tuple(row) -> tuple:
    """A vehicle row as COPY values (the point as EWKT)."""
    return (row.time, row.device_id, f"SRID=4326;POINT({row.lon!r} {row.lat!r})", row.speed_kmh, row.heading_deg,
            row.gps_error_m, row.accel_long, row.accel_trans, row.accel_vert, row.role, row.blade_down)


def metric_tuple(row, with_label: bool) -> tuple:
    """A metric row as COPY values."""
    if with_label:
        return (row.time, row.device_id, row.metric, row.value, row.label)
    return (row.time, row.device_id, row.metric, row.value)


def _copy(cur: psycopg.Cursor, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
    with cur.copy(f"copy {table} ({', '.join(columns)}) from stdin") as copy:
        for row in rows:
            copy.write_row(row)


def _copy_idempotent(cur: psycopg.Cursor, table: str, columns: Sequence[str], rows: list[tuple]) -> int:
    stage = "stage_" + table.split(".")[-1]
    cur.execute(f"create temp table if not exists {stage} (like {table} including defaults) on commit delete rows")
    _copy(cur, stage, columns, rows)
    cols = ", ".join(columns)
    cur.execute(f"insert into {table} ({cols}) select {cols} from {stage} on conflict do nothing")
    return cur.rowcount


def _write_dead_letters(cur: psycopg.Cursor, letters: list[DeadLetter]) -> None:
    if letters:
        _copy(cur, "core.dead_letters", ("topic", "payload", "reason", "detail", "client_id", "device_id"),
              [(d.topic, d.payload, d.reason, d.detail, d.client_id, d.device_id) for d in letters])


def latest_of(batch: Batch) -> tuple[list[tuple], list[tuple]]:
    """The newest metric value per (device, metric) and position per device in ``batch``."""
    values: dict[tuple[str, str], tuple] = {}
    positions: dict[str, tuple] = {}
    for table, rows in batch.rows.items():
        if table == "telemetry.vehicle_positions":
            for r in rows:
                old = positions.get(r[1])
                if old is None or r[0] > old[1]:
                    positions[r[1]] = (r[1], r[0], r[2], r[3], r[4], r[9], r[10])
            continue
        for r in rows:
            key = (r[1], r[2])
            old = values.get(key)
            if old is None or r[0] > old[2]:
                values[key] = (r[1], r[2], r[0], r[3], r[4] if len(r) > 4 else None)
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
        (values, "latest_values", ("device_id", "metric", "time", "value", "label"), UPSERT_LATEST_VALUES),
        (positions, "latest_positions", ("device_id", "time", "geom", "speed_kmh", "heading_deg", "role",
                                         "blade_down"), UPSERT_LATEST_POSITIONS),
    ):
        if rows:
            cur.execute(f"create temp table if not exists stage_{table} (like telemetry.{table}) "
                        "on commit delete rows")
            _copy(cur, f"stage_{table}", columns, sorted(rows))
            cur.execute(upsert)


def write_batch(conn: psycopg.Connection, batch: Batch) -> int:
    """Commit ``batch`` in one transaction; new rows written (duplicates of stored rows are skipped).

    The latest value of each device and metric is updated in the same transaction.
    """
    if not batch.rows and not batch.dead_letters:
        return 0
    try:
        with conn.transaction(), conn.cursor() as cur:
            for table, rows in batch.rows.items():
                _copy(cur, table, TABLE_COLUMNS[table], rows)
            _write_latest(cur, batch)
            _write_dead_letters(cur, batch.dead_letters)
        return batch.row_count
    except psycopg.errors.UniqueViolation:
        pass
    written = 0
    with conn.transaction(), conn.cursor() as cur:
        for table, rows in batch.rows.items():
            written += _copy_idempotent(cur, table, TABLE_COLUMNS[table], rows)
        _write_latest(cur, batch)
        _write_dead_letters(cur, batch.dead_letters)
    return written
