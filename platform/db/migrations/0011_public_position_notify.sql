-- Public exits (the live SSE/WebSocket feeds, the public MQTT tree) take snowplow positions from
-- here, never from the broker: a position is announced only once the ingest writer has committed it
-- to telemetry.latest_positions, i.e. after it passed ingest's validation, and only for public,
-- unrevoked snowplows (the same rule as gis.snowplow_positions). NOTIFY is transactional: nothing
-- is announced for a batch that rolls back. Listeners: cityos.platform.public_positions.
create function telemetry.notify_public_position() returns trigger language plpgsql as $$
begin
    if exists (select 1 from core.devices d
               where d.device_id = new.device_id and d.public and d.kind = 'snowplow' and d.revoked_at is null) then
        perform pg_notify('cityos_public_positions', json_build_object(
            'device_id', new.device_id, 'time', new.time, 'lat', st_y(new.geom), 'lon', st_x(new.geom),
            'speed_kmh', new.speed_kmh, 'heading_deg', new.heading_deg, 'blade_down', new.blade_down)::text);
    end if;
    return null;
end $$;

create trigger latest_positions_public_notify
    after insert or update on telemetry.latest_positions
    for each row execute function telemetry.notify_public_position();
