-- Access for people and programs: scoped API tokens (staff, services) and one-time enrolment
-- tokens with which a gateway obtains its MQTT credentials. Only SHA-256 hashes are stored.
create table core.api_tokens (
    id          bigint generated always as identity primary key,
    token_hash  text not null unique,
    name        text not null,
    scopes      text[] not null,
    created_at  timestamptz not null default now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);

create table core.enrolment_tokens (
    token_hash  text primary key,
    device_id   text not null references core.devices (device_id),
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null,
    used_at     timestamptz
);
