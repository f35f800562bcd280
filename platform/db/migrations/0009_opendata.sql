-- Open data: the publisher's log (what each run changed in CKAN, for schedules, resumption and audit)
-- and citizens' dataset requests (DATA for CITIZEN has them).
create schema if not exists opendata;

create table opendata.publish_log (
    id          bigint generated always as identity primary key,
    run_id      uuid not null,
    dataset     text not null,
    status      text not null check (status in ('published', 'unchanged', 'failed', 'refused', 'dry-run')),
    changes     jsonb not null default '[]'::jsonb,
    error       text not null default '',
    rows        integer,
    at          timestamptz not null default now()
);
create index publish_log_dataset_idx on opendata.publish_log (dataset, at desc);

create table opendata.dataset_requests (
    id           bigint generated always as identity primary key,
    title        text not null check (length(title) between 3 and 200),
    description  text not null default '' check (length(description) <= 4000),
    -- How to reach the requester (optional). Personal: shown to staff only, never in public listings.
    contact      text not null default '' check (length(contact) <= 200),
    status       text not null default 'open' check (status in ('open', 'answered', 'closed')),
    answer       text not null default '' check (length(answer) <= 4000),
    answered_by  text,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    requester_hash text not null default ''
);
create index dataset_requests_status_idx on opendata.dataset_requests (status, created_at desc);
