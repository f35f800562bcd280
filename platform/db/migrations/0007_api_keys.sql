-- Self-service API keys of citizen developers: hashed at rest, each with its own rate and quota.
create table core.api_keys (
    id              bigint generated always as identity primary key,
    key_hash        text not null unique,
    key_prefix      text not null,
    name            text not null,
    contact         text not null,
    rate_per_minute integer not null default 600,
    daily_quota     integer not null default 100000,
    created_at      timestamptz not null default now(),
    revoked_at      timestamptz
);
