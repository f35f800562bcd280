-- Core schema: device registry, telemetry hypertables, dead letters, districts, consents, audit log.
create extension if not exists timescaledb;
create extension if not exists postgis;

create schema if not exists core;
create schema if not exists telemetry;
create schema if not exists gis;

-- Devices that may publish telemetry. device_id is also the device's MQTT user name.
create table core.devices (
    device_id          text primary key check (device_id ~ '^[a-z0-9][a-z0-9_-]{2,63}$'),
    domain             text not null check (domain in ('hems', 'vehicle', 'health', 'env')),
    kind               text not null default '',
    owner_subject      text,
    district_code      text,
    public             boolean not null default false,
    display_name       text not null default '',
    mqtt_password_hash text,
    metadata           jsonb not null default '{}'::jsonb,
    created_at         timestamptz not null default now(),
    revoked_at         timestamptz
);
create index devices_owner_idx on core.devices (owner_subject) where owner_subject is not null;

-- Vehicle positions (snowplows, patrol cars): one row per observation; (device_id, time) makes
-- re-delivery idempotent.
create table telemetry.vehicle_positions (
    time         timestamptz not null,
    device_id    text not null,
    geom         geometry(Point, 4326) not null,
    speed_kmh    real,
    heading_deg  real,
    gps_error_m  real,
    accel_long   real,   -- m/s², positive forward (negative = braking)
    accel_trans  real,   -- m/s², positive to the right
    accel_vert   real,   -- m/s², gravity removed
    role         text,
    blade_down   boolean,
    received_at  timestamptz not null default now(),
    primary key (device_id, time)
);
select create_hypertable('telemetry.vehicle_positions', 'time', chunk_time_interval => interval '1 day');
create index vehicle_positions_geom_idx on telemetry.vehicle_positions using gist (geom);

-- Narrow tables (one metric per row) for energy, health and anything else: new metrics need no
-- migration; (device_id, metric, time) makes re-delivery idempotent.
create table telemetry.energy_readings (
    time        timestamptz not null,
    device_id   text not null,
    metric      text not null,
    value       double precision not null,
    received_at timestamptz not null default now(),
    primary key (device_id, metric, time)
);
select create_hypertable('telemetry.energy_readings', 'time', chunk_time_interval => interval '1 day');

create table telemetry.health_readings (
    time        timestamptz not null,
    device_id   text not null,
    metric      text not null,
    value       double precision not null,
    label       text,
    received_at timestamptz not null default now(),
    primary key (device_id, metric, time)
);
select create_hypertable('telemetry.health_readings', 'time', chunk_time_interval => interval '7 days');

create table telemetry.measurements (
    time        timestamptz not null,
    device_id   text not null,
    metric      text not null,
    value       double precision not null,
    received_at timestamptz not null default now(),
    primary key (device_id, metric, time)
);
select create_hypertable('telemetry.measurements', 'time', chunk_time_interval => interval '1 day');

-- Every rejected message, with the reason, so nothing is dropped silently; replayable.
create table core.dead_letters (
    id            bigint generated always as identity primary key,
    received_at   timestamptz not null default now(),
    topic         text not null,
    client_id     text,
    device_id     text,
    reason        text not null,
    detail        text not null default '',
    payload       bytea not null,
    replayed_at   timestamptz,
    replay_result text
);
create index dead_letters_reason_idx on core.dead_letters (reason, received_at desc);
create index dead_letters_pending_idx on core.dead_letters (received_at) where replayed_at is null;

-- Districts (町丁目) in WGS84; areas measured in the plane rectangular zone of the city.
create table gis.districts (
    code     text primary key,
    name_ja  text not null,
    name_en  text not null default '',
    geom     geometry(MultiPolygon, 4326) not null check (st_isvalid(geom)),
    area_m2  double precision
);
create index districts_geom_idx on gis.districts using gist (geom);

-- Consent: an append-only history of grants and withdrawals per resident, category and purpose.
create table core.consent_events (
    id          bigint generated always as identity primary key,
    subject_id  text not null,
    category    text not null check (category in ('energy', 'location', 'health', 'registry')),
    purpose     text not null check (purpose in ('open_data', 'research', 'services')),
    action      text not null check (action in ('grant', 'withdraw')),
    at          timestamptz not null default now(),
    actor       text not null,
    note        text not null default ''
);
create index consent_events_subject_idx on core.consent_events (subject_id, category, purpose, at desc, id desc);

create view core.consents_current as
select subject_id, category, purpose, at as granted_at
from (
    select distinct on (subject_id, category, purpose) subject_id, category, purpose, action, at
    from core.consent_events
    order by subject_id, category, purpose, at desc, id desc
) latest
where action = 'grant';

-- Audit trail of every access to personal data and every administrative change. Append-only.
create table core.audit_log (
    id          bigint generated always as identity primary key,
    at          timestamptz not null default now(),
    actor       text not null,
    role        text not null default '',
    action      text not null,
    resource    text not null,
    detail      jsonb not null default '{}'::jsonb,
    client_addr text
);
create index audit_log_at_idx on core.audit_log (at desc);

create function core.audit_log_is_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'core.audit_log is append-only';
end $$;
create trigger audit_log_append_only before update or delete on core.audit_log
    for each statement execute function core.audit_log_is_append_only();
