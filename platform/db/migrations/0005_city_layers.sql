-- The city's layers for the unified GIS, in WGS84 (measured in EPSG:6677, Japan Plane
-- Rectangular zone IX, by the analyses), and the resident-registry extract in its own schema.
create schema if not exists registry;

create table gis.facilities (
    id        text primary key,
    name      text not null,
    kind      text not null,
    district_code text,
    geom      geometry(Point, 4326) not null
);
create index facilities_geom_idx on gis.facilities using gist (geom);

create table gis.bus_stops (
    stop_id   text primary key,
    name      text not null,
    boardings_per_day double precision,
    geom      geometry(Point, 4326) not null
);
create index bus_stops_geom_idx on gis.bus_stops using gist (geom);

-- 消防水利施設一覧 (standard municipal open dataset 09), current format columns kept as loaded.
create table gis.fire_water (
    id            text primary key,
    kind          text not null,            -- 種別: 消火栓, 防火水槽, ...
    address       text not null default '', -- 所在地_連結表記
    diameter      text not null default '', -- 口径
    note          text not null default '', -- 備考
    attributes    jsonb not null default '{}'::jsonb,
    geom          geometry(Point, 4326) not null
);
create index fire_water_geom_idx on gis.fire_water using gist (geom);

create table gis.roads (
    road_id    text primary key,
    name       text not null default '',
    road_class text not null default '',
    geom       geometry(LineString, 4326) not null
);
create index roads_geom_idx on gis.roads using gist (geom);

create table gis.accidents (
    id        text primary key,
    occurred_at timestamptz,
    severity  text not null default '',
    geom      geometry(Point, 4326) not null
);
create index accidents_geom_idx on gis.accidents using gist (geom);

-- Address points (one per building/household address), for coverage and vacancy analyses.
create table gis.addresses (
    address_id    text primary key,
    district_code text,
    geom          geometry(Point, 4326) not null
);
create index addresses_geom_idx on gis.addresses using gist (geom);

-- 住民基本台帳 extract: personal data. Only staff with the registry scope read raw rows (audited);
-- everything else goes through per-district aggregates with small cells suppressed.
create table registry.residents (
    person_id     text primary key,
    household_id  text not null,
    district_code text not null,
    address_id    text,
    birth_date    date not null,
    sex           text not null check (sex in ('M', 'F', 'X')),
    moved_in      date,
    moved_out     date,
    updated_at    timestamptz not null default now()
);
create index residents_district_idx on registry.residents (district_code) where moved_out is null;

create table registry.updates (
    id          bigint generated always as identity primary key,
    as_of       date not null,
    inserted    integer not null,
    updated     integer not null,
    moved_out   integer not null,
    loaded_at   timestamptz not null default now()
);

-- Load reports: rows refused or repaired by a loader, so nothing is silently dropped.
create table gis.load_reports (
    id         bigint generated always as identity primary key,
    layer      text not null,
    source     text not null,
    loaded     integer not null,
    repaired   integer not null,
    refused    integer not null,
    problems   jsonb not null default '[]'::jsonb,
    loaded_at  timestamptz not null default now()
);
