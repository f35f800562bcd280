-- NGSI-LD subscriptions (cityos.ingest.ngsild): each owned by a staff token or a developer's API key
-- (kept as the hash the platform already stores), so a revoked token or key stops its notifications and
-- what a notification may carry is decided by the owner's rights at the time it is sent.
create table core.ngsild_subscriptions (
    id                text primary key,
    owner_kind        text not null check (owner_kind in ('token', 'key')),
    owner_hash        text not null,
    body              jsonb not null,
    endpoint          text not null,
    throttling        double precision not null default 0 check (throttling >= 0),
    expires_at        timestamptz,
    active            boolean not null default true,
    created_at        timestamptz not null default now(),
    modified_at       timestamptz not null default now(),
    last_notification timestamptz,
    last_success      timestamptz,
    last_failure      timestamptz,
    times_sent        bigint not null default 0,
    times_failed      bigint not null default 0
);
create index ngsild_subscriptions_owner_idx on core.ngsild_subscriptions (owner_kind, owner_hash);

-- Announce which attributes of which devices a committed statement changed ("device/metric"; a
-- position is "device/location"), only while some subscription is active: NOTIFY is transactional, so
-- only readings the ingest writer committed (after validation) are announced, and a rolled-back batch
-- announces nothing. One notification per statement, not per row; more than 200 changes are announced
-- as "*" (the payload of NOTIFY is small) and the notifier looks at every device.
create function telemetry.notify_ngsild_changes() returns trigger language plpgsql as $$
declare
    changes text[];
begin
    if not exists (select 1 from core.ngsild_subscriptions where active) then
        return null;
    end if;
    if tg_table_name = 'latest_values' then
        execute 'select array_agg(distinct device_id || ''/'' || metric) from (select * from changed limit 5000) c'
            into changes;
    else
        execute 'select array_agg(distinct device_id || ''/location'') from (select * from changed limit 5000) c'
            into changes;
    end if;
    if changes is not null then
        perform pg_notify('cityos_ngsild_changes',
                          case when cardinality(changes) > 200 then '"*"' else to_json(changes)::text end);
    end if;
    return null;
end $$;

create trigger latest_values_ngsild_insert after insert on telemetry.latest_values
    referencing new table as changed for each statement execute function telemetry.notify_ngsild_changes();
create trigger latest_values_ngsild_update after update on telemetry.latest_values
    referencing new table as changed for each statement execute function telemetry.notify_ngsild_changes();
create trigger latest_positions_ngsild_insert after insert on telemetry.latest_positions
    referencing new table as changed for each statement execute function telemetry.notify_ngsild_changes();
create trigger latest_positions_ngsild_update after update on telemetry.latest_positions
    referencing new table as changed for each statement execute function telemetry.notify_ngsild_changes();
