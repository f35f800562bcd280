-- Sequence numbers of devices' streams and the gaps in them (cityos.ingest.gaps). A stream is one
-- device's readings of one domain; the edge gateway numbers each reading (payload field `sn`) when it
-- enters its outbox. Ingest keeps, in the same transaction as the readings, the highest number seen
-- per stream and every range of numbers below it that never arrived. A late reading that fills a gap
-- closes that row (closed_at) and opens its remaining parts again with the gap's opening time, so the
-- history says when each missing number was first missed and when it came.
create table core.stream_sequences (
    device_id text not null,
    stream text not null,                        -- the domain of the device's readings
    highest bigint not null check (highest >= 0),
    updated_at timestamptz not null,
    primary key (device_id, stream)
);

create table core.stream_gaps (
    id bigserial primary key,
    device_id text not null,
    stream text not null,
    first_sn bigint not null,
    last_sn bigint not null,
    opened_at timestamptz not null,              -- when a later number first showed these were missing
    closed_at timestamptz,                       -- when some of them arrived (the rest is a new row)
    check (1 <= first_sn and first_sn <= last_sn)
);
create index stream_gaps_open on core.stream_gaps (device_id, stream, first_sn) where closed_at is null;
