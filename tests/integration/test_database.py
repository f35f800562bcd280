"""The schema on the real PostgreSQL 17 + PostGIS + TimescaleDB server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cityos.platform.db.features import detect
from cityos.platform.db.migrate import discover, migrate


def test_migrations_applied_twice_change_nothing(database_url, db):
    before = db.execute("select version, checksum, applied_at from cityos_meta.schema_migrations").fetchall()

    assert migrate(database_url) == []

    after = db.execute("select version, checksum, applied_at from cityos_meta.schema_migrations").fetchall()
    assert after == before
    assert [row[0] for row in after] == [m.version for m in discover()]


def test_telemetry_tables_are_hypertables(db):
    rows = db.execute(
        "select hypertable_schema || '.' || hypertable_name from timescaledb_information.hypertables"
    ).fetchall()
    assert {r[0] for r in rows} >= {
        "telemetry.vehicle_positions", "telemetry.energy_readings",
        "telemetry.health_readings", "telemetry.measurements",
    }


def test_redelivered_reading_makes_no_duplicate_row(db):
    insert = ("insert into telemetry.energy_readings (time, device_id, metric, value) "
              "values ('2026-01-05 10:00+09', 'hems-dup', 'power_w', 420) on conflict do nothing")
    db.execute(insert)
    db.execute(insert)
    count = db.execute("select count(*) from telemetry.energy_readings where device_id = 'hems-dup'").fetchone()[0]
    assert count == 1


def test_postgis_measures_distance_in_the_city_plane_zone(db):
    db.execute("""insert into telemetry.vehicle_positions (time, device_id, geom, speed_kmh)
                  values ('2026-01-05 06:00+09', 'plow-t1', st_setsrid(st_point(139.9297, 37.4947), 4326), 12),
                         ('2026-01-05 06:00:10+09', 'plow-t1', st_setsrid(st_point(139.9307, 37.4947), 4326), 14)""")
    metres = db.execute("""
        select st_distance(st_transform(a.geom, 6677), st_transform(b.geom, 6677))
        from telemetry.vehicle_positions a, telemetry.vehicle_positions b
        where a.device_id = 'plow-t1' and b.device_id = 'plow-t1' and a.time < b.time""").fetchone()[0]
    # 0.001 degrees of longitude at 37.49 N is about 88.4 m
    assert 87.5 < metres < 89.5


def test_time_bucket_aggregates_readings(db):
    db.execute("""insert into telemetry.measurements (time, device_id, metric, value)
                  select t, 'soil-t1', 'soil_moisture', extract(minute from t)
                  from generate_series('2026-01-05 10:00+00'::timestamptz, '2026-01-05 11:59+00', '1 minute') t""")
    rows = db.execute("""select time_bucket('1 hour', time) b, count(*), avg(value)
                         from telemetry.measurements where device_id = 'soil-t1' group by b order by b""").fetchall()
    assert [(r[1], r[2]) for r in rows] == [(60, 29.5), (60, 29.5)]


def test_apache_build_uses_platform_rollups_and_retention(db):
    features = detect(db)
    mode = db.execute("select value from cityos_meta.settings where key = 'rollup_mode'").fetchone()[0]
    assert mode == ("continuous_aggregate" if features.community else "platform_table")


def test_maintenance_rolls_up_energy_per_hour(database_url, db):
    from cityos.ingest.writer import Batch, write_batch
    from cityos.platform.db.maintenance import run_maintenance

    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    batch = Batch()  # through ingest's writer, which marks the roll-up buckets its rows touch
    batch.add_rows("telemetry.energy_readings",
                   [(start + timedelta(minutes=m), "hems-roll", "power_w", float(m)) for m in range(60)])
    write_batch(db, batch)
    run_maintenance(database_url, 400)
    if not detect(db).community:
        row = db.execute("""select count, avg, min, max from telemetry.energy_hourly
                            where device_id = 'hems-roll' and metric = 'power_w'""").fetchone()
        assert row == (60, 29.5, 0, 59)


def test_retention_drops_chunks_older_than_configured(database_url, db):
    from cityos.platform.db.maintenance import apply_retention

    db.execute("""insert into telemetry.measurements (time, device_id, metric, value)
                  values (now() - interval '500 days', 'old-t1', 'x', 1), (now(), 'old-t1', 'x', 2)""")
    dropped = apply_retention(db, 400)
    if not detect(db).community:
        assert dropped["telemetry.measurements"] >= 1
        left = db.execute("select value from telemetry.measurements where device_id = 'old-t1'").fetchall()
        assert left == [(2.0,)]


def test_audit_log_is_append_only(db):
    import psycopg
    import pytest

    db.execute("insert into core.audit_log (actor, action, resource) values ('test', 'read', 'x')")
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        db.execute("delete from core.audit_log")


def test_withdrawn_consent_is_not_current(db):
    db.execute("""insert into core.consent_events (subject_id, category, purpose, action, at, actor) values
                  ('r-1', 'health', 'research', 'grant', '2026-01-01', 'portal'),
                  ('r-1', 'health', 'research', 'withdraw', '2026-02-01', 'portal'),
                  ('r-2', 'health', 'research', 'grant', '2026-01-01', 'portal')""")
    current = db.execute("select subject_id from core.consents_current where category = 'health' "
                         "and subject_id in ('r-1', 'r-2')").fetchall()
    assert current == [("r-2",)]
