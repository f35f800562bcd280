-- The latest reading of every device and metric, kept by the ingest writer in the same
-- transaction as the readings: "latest value of many sensors" is one index scan, not a search
-- through the hypertables.
create table telemetry.latest_values (
    device_id text not null,
    metric    text not null,
    time      timestamptz not null,
    value     double precision not null,
    label     text,
    primary key (device_id, metric)
);

create table telemetry.latest_positions (
    device_id   text primary key,
    time        timestamptz not null,
    geom        geometry(Point, 4326) not null,
    speed_kmh   real,
    heading_deg real,
    role        text,
    blade_down  boolean
);
create index latest_positions_geom_idx on telemetry.latest_positions using gist (geom);

-- Personal data never becomes public: only city-owned vehicles and environment sensors may be.
alter table core.devices add constraint devices_public_domains
    check (not public or domain in ('vehicle', 'env'));
