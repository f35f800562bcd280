-- A series answer made only of rolled-up buckets (a year of daily averages up to a past day) is kept by each
-- API process until what it was read from changes: the roll-ups (every write to them bumps their row in
-- cityos_meta.rollup_watermarks) or the device registry (public, revoked). Statements that change either
-- announce it on cityos_series_changed, once per statement (transactional: nothing for a rollback).
-- Listener: the series answers of cityos.platform.api.sensors (cityos.platform.api.snapshots.Snapshots).
create function telemetry.notify_series_changed() returns trigger language plpgsql as $$
begin
    perform pg_notify('cityos_series_changed', '');
    return null;
end $$;

create trigger rollup_watermarks_changed after insert or update or delete or truncate
    on cityos_meta.rollup_watermarks for each statement execute function telemetry.notify_series_changed();
create trigger devices_series_changed after insert or update or delete or truncate on core.devices
    for each statement execute function telemetry.notify_series_changed();
