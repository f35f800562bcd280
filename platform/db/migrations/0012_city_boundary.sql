-- The city's administrative boundary (国土数値情報 N03 行政区域 or a derivative): the outline every
-- loader checks positions against (with a tolerance) and the demo city is generated inside.
create table gis.boundary (
    code      text primary key,            -- 全国地方公共団体コード (N03_007), e.g. 07202
    name      text not null,               -- e.g. 会津若松市
    source    text not null default '',    -- file and attribution it came from
    geom      geometry(MultiPolygon, 4326) not null,
    loaded_at timestamptz not null default now()
);
create index boundary_geom_idx on gis.boundary using gist (geom);

-- Service frequency of a bus stop (GTFS-JP: departures on a typical weekday); null = unknown (a
-- layer loaded without a timetable). Bus coverage counts a stop only with enough departures.
alter table gis.bus_stops add column departures_per_weekday integer;
