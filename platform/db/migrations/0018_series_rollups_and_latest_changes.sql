-- Series and snapshots without the cache. Hourly and daily roll-ups behind long-range series (the open API's /sensors/{id}/series with
-- interval=1h or 1d), declared in cityos.platform.db.series_rollups.SERIES_ROLLUPS and filled by the
-- maintenance pass on both TimescaleDB editions (the buckets follow the CITYOS_TIMEZONE setting, which a
-- continuous aggregate cannot take). Each row carries the zone its buckets were cut in. They outlive raw
-- retention: they are not in cityos_meta.retention.
create table telemetry.measurements_hourly (
    zone      text not null,
    bucket    timestamptz not null,
    device_id text not null,
    metric    text not null,
    avg       double precision,
    min       double precision,
    max       double precision,
    sum       double precision,
    count     bigint not null,
    primary key (device_id, metric, zone, bucket)
);
create table telemetry.measurements_daily (like telemetry.measurements_hourly including all);
create table telemetry.vehicle_positions_hourly (like telemetry.measurements_hourly including all);
create table telemetry.vehicle_positions_daily (like telemetry.measurements_hourly including all);

-- How far each roll-up is complete, per zone: every bucket before done_until is rolled up; the series
-- route reads raw rows from there on. version counts the writes to the roll-up (the API keeps rolled-up
-- rows it read until it changes; from a sequence, so a value is never given twice).
create sequence cityos_meta.rollup_versions;
create table cityos_meta.rollup_watermarks (
    rollup     text not null,
    zone       text not null,
    done_until timestamptz not null,
    version    bigint not null default nextval('cityos_meta.rollup_versions'),
    primary key (rollup, zone)
);

-- The open API's snapshot of the latest values (/api/v1/sensors/latest, 10,000 sensors in one answer) is
-- encoded once per change, not per request: any statement that changes what it shows (the latest values,
-- the latest positions, the device registry: public, revoked) announces it, once per statement, on
-- cityos_latest_changed (transactional: nothing for a rollback; one notification per transaction however
-- many statements). Listener: cityos.platform.api.snapshots.
create function telemetry.notify_latest_changed() returns trigger language plpgsql as $$
begin
    perform pg_notify('cityos_latest_changed', '');
    return null;
end $$;

create trigger latest_values_changed after insert or update or delete or truncate on telemetry.latest_values
    for each statement execute function telemetry.notify_latest_changed();
create trigger latest_positions_changed after insert or update or delete or truncate on telemetry.latest_positions
    for each statement execute function telemetry.notify_latest_changed();
create trigger devices_changed after insert or update or delete or truncate on core.devices
    for each statement execute function telemetry.notify_latest_changed();
