-- Daily registry change files: where each load came from, so a file applied twice is recognised.
alter table registry.updates add column source text not null default '';
alter table registry.updates add column source_sha256 text;
create unique index registry_updates_source_idx on registry.updates (source_sha256) where source_sha256 is not null;
