-- The erasure ledger as a table, written only by the erasures projector (projections.erasures)
-- from wa.erasures: one row per applied ErasureRequested, with what it removed. No personal
-- data: the subject is its hash (contracts.erasure.subject_hash). Other projectors read it to
-- ignore what was logged about an erased subject before its requested_at.

create table erasures (
    erasure_id        text primary key,
    subject_kind      text not null,                 -- chat or phone
    subject_hash      text not null,                 -- hex SHA-256, contracts.erasure.subject_hash
    requested_at      timestamptz not null,
    requested_by      text not null,
    chats             integer not null,              -- chats found for the subject
    chat_hashes       text[] not null,               -- subject_hash('chat', key) of each: hides @lid chats too
    removed           jsonb not null,                -- rows removed per table, files per storage
    source_partition  integer not null,
    source_offset     bigint not null,
    completed_at      timestamptz not null default now(),
    constraint erasures_subject_kind_check check (subject_kind in ('chat', 'phone'))
);
create index erasures_subject_idx on erasures (subject_hash, requested_at desc);

alter table erasures enable row level security;
