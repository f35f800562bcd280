-- Residents' reports that a hydrant is buried in snow or cleared; staff moderate them.
create table gis.hydrant_reports (
    id            bigint generated always as identity primary key,
    hydrant_id    text not null,            -- gis.fire_water.id; no foreign key: the layer is reloaded whole
    status        text not null check (status in ('buried', 'cleared')),
    reported_at   timestamptz not null default now(),
    reporter_hash text not null,            -- salted hash of the reporter's address: rate limits, no identity
    moderation    text not null default 'pending' check (moderation in ('pending', 'approved', 'rejected')),
    moderated_by  text,
    moderated_at  timestamptz
);
create index hydrant_reports_pending_idx on gis.hydrant_reports (reported_at) where moderation = 'pending';
create index hydrant_reports_hydrant_idx on gis.hydrant_reports (hydrant_id, reported_at desc);
