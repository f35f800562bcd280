-- Hourly and daily roll-ups behind long-range series (the open API's /sensors/{id}/series with
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
-- route reads raw rows from there on.
create table cityos_meta.rollup_watermarks (
    rollup     text not null,
    zone       text not null,
    done_until timestamptz not null,
    primary key (rollup, zone)
);
