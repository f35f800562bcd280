-- The ingest workers' MQTT sessions (cityos.ingest.sessions). Every worker of `cityos ingest` is the
-- MQTT client `cityos-ingest-{instance}-{index}` with a persistent session in the broker's ingest
-- share group; the broker keeps handing an offline member its share of the messages. This registry
-- lets the platform find sessions whose worker no longer exists (a scaled-down index, an instance
-- that has gone) and drain and end them, so no acknowledged reading waits in a session nobody reads.
-- An instance is alive while its `cityos ingest` process holds the advisory lock (1667855481, instance).
create table core.ingest_sessions (
    client_id text primary key,
    instance integer not null check (instance >= 0),
    worker_index integer not null check (worker_index >= 0),
    host text not null default '',               -- where it last ran (shown; never part of the id)
    registered_at timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    leaving boolean not null default false,      -- its instance is stopping for good (others stay)
    ended_at timestamptz,                        -- the broker's session was ended (drained first)
    end_reason text,
    drained_messages bigint not null default 0
);
create index ingest_sessions_open on core.ingest_sessions (instance) where ended_at is null;
