-- Every reading accounted for: a per-device ledger written in the same transaction as the rows it
-- counts, the roll-up buckets each batch touched (recomputed by maintenance however old), the days of
-- raw data that received late readings (datasets over them become due), and an expected reporting
-- interval per device (the fleet view's "silent" test). Plain tables: the same on both TimescaleDB editions.

-- One row per device and arrival hour (UTC); reports sum hours into UTC days or the city's local days.
create table core.device_ledger (
    device_id   text not null,            -- '' for messages whose topic names no device
    hour        timestamptz not null,     -- arrival hour (UTC), date_trunc('hour', received_at)
    messages    bigint not null default 0,  -- deliveries received (a broker re-delivery counts again)
    stored      bigint not null default 0,  -- readings (rows) written
    duplicates  bigint not null default 0,  -- readings absorbed by the tables' keys (already stored)
    late        bigint not null default 0,  -- readings older than an hour when they arrived
    refused     jsonb not null default '{}'::jsonb,  -- refused messages by reason: {"unknown_device": 3}
    newest      timestamptz,              -- newest observation time among the readings
    primary key (device_id, hour)
);
create index device_ledger_hour_idx on core.device_ledger (hour);

-- {"a": 1} + {"a": 2, "b": 1} = {"a": 3, "b": 1}: how refusal counts add up on upsert.
create function core.jsonb_add_counts(a jsonb, b jsonb) returns jsonb language sql immutable as $$
    select coalesce(jsonb_object_agg(key, total), '{}'::jsonb) from (
        select key, sum(value::bigint) as total
        from (select * from jsonb_each_text(a) union all select * from jsonb_each_text(b)) kv
        group by key) s
$$;

-- Roll-up buckets that received rows and must be recomputed. Writers insert with claimed = 0 (on
-- conflict do nothing); a maintenance pass claims the marks (sets its run id), recomputes those
-- buckets and deletes its claimed marks; marks a crashed pass left are recomputed by the next.
create table cityos_meta.rollup_dirty (
    rollup    text not null,
    bucket    timestamptz not null,
    claimed   bigint not null default 0,
    marked_at timestamptz not null default now(),
    primary key (rollup, bucket, claimed)
);

-- Days (UTC) of raw telemetry that received readings older than an hour, and when they last did:
-- a dataset reading that table over that day is due again (opendata.run.due).
create table cityos_meta.late_arrivals (
    source      text not null,
    day         date not null,
    arrived_at  timestamptz not null,
    primary key (source, day)
);

-- How often a device is expected to report; null: the default of its domain (ingest.ledger.EXPECTED).
alter table core.devices add column expected_interval interval
    check (expected_interval is null or expected_interval > interval '0');

-- Buckets of the last 48 hours: until this migration the roll-up covered them by its fixed look-back.
insert into cityos_meta.rollup_dirty (rollup, bucket)
select distinct 'telemetry.energy_hourly', time_bucket('1 hour', time)
from telemetry.energy_readings where time >= now() - interval '48 hours'
on conflict do nothing;
