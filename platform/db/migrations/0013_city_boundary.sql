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

-- 地域・年齢別人口 (standard municipal open dataset 11): published counts per 町丁目 and date, for a
-- city without a registry extract. Counts are as published (already public); ages in 5-year bands.
create table gis.area_population (
    area_code   text not null,            -- 町字ID / 地域コード, or the area name when the file has none
    area_name   text not null default '',
    as_of       date not null,            -- 調査年月日
    total       integer,
    male        integer,
    female      integer,
    households  integer,
    age_bands   jsonb not null default '{}'::jsonb,  -- {"0-4": n, ..., "100+": n, "unknown": n} (both sexes)
    primary key (area_code, as_of)
);
