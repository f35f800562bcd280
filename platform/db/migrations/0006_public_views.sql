-- Public views served by the OGC API: only city-owned vehicles, never personal devices.
create view gis.snowplow_positions as
select p.device_id, p.time, p.geom, p.speed_kmh, p.heading_deg, p.blade_down
from telemetry.latest_positions p join core.devices d using (device_id)
where d.public and d.revoked_at is null and d.kind = 'snowplow';
