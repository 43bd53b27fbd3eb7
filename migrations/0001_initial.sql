-- Message Memory: the projected tables. Projections own these rows; the Kafka log is the
-- source of truth, so every row can be rebuilt from it.
--
-- Row level security is enabled on every table with no policy: Supabase's public API
-- (anon / authenticated roles) sees nothing. The projector connects as the table owner
-- (or service_role), which bypasses RLS.

create extension if not exists vector;

-- One row per conversation: a contact or a group, on one business channel of one provider.
create table chats (
    chat_key            text primary key,            -- provider:channel:chat id, see contracts
    provider            text not null,
    channel_id          text not null,               -- business number or Meta phone_number_id
    chat_id             text not null,               -- the provider's chat id, normalised
    contact_phone       text,                        -- E.164 digits; null for groups and @lid ids
    contact_name        text,
    is_group            boolean not null default false,
    group_name          text,
    user_id             text,                        -- link to an existing users table, by phone
    consent_state       text not null default 'unknown',
    consent_changed_at  timestamptz,
    last_inbound_at     timestamptz,                 -- opens the 24-hour customer-service window
    last_outbound_at    timestamptz,
    last_message_at     timestamptz,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    constraint chats_consent_state_check check (consent_state in ('unknown', 'opted_in', 'opted_out')),
    constraint chats_provider_channel_chat_key unique (provider, channel_id, chat_id)
);
create index chats_contact_phone_idx on chats (contact_phone);

-- One row per message, in or out.
create table chat_messages (
    id                            text primary key,  -- deterministic from provider ids
    chat_key                      text not null,
    provider                      text not null,
    channel_id                    text not null,
    provider_message_id           text not null,
    sender_id                     text,
    sender_name                   text,
    origin                        text not null,     -- who wrote it: user (the contact) or agent
    direction                     text not null,
    message_type                  text not null,
    body                          text,
    caption                       text,
    transcript                    text,
    extracted_text                text,
    reply_to_provider_message_id  text,
    forwarded                     boolean not null default false,
    status                        text,
    status_at                     timestamptz,
    status_error                  text,
    edited_at                     timestamptz,
    deleted_at                    timestamptz,
    provider_timestamp            timestamptz not null,
    received_at                   timestamptz not null,
    raw_event                     jsonb,
    source_topic                  text,
    source_partition              integer,
    source_offset                 bigint,
    created_at                    timestamptz not null default now(),
    updated_at                    timestamptz not null default now(),
    constraint chat_messages_chat_key_fkey foreign key (chat_key) references chats (chat_key) on delete cascade,
    constraint chat_messages_origin_check check (origin in ('user', 'agent', 'system')),
    constraint chat_messages_direction_check check (direction in ('inbound', 'outbound')),
    constraint chat_messages_status_check
        check (status is null or status in ('pending', 'sent', 'delivered', 'read', 'played', 'failed')),
    constraint chat_messages_provider_message_key unique (provider, channel_id, provider_message_id)
);
create index chat_messages_chat_time_idx on chat_messages (chat_key, provider_timestamp desc);

-- One row per media object. No foreign key to chat_messages: each projection consumes its
-- topics independently, so a media row may be written before its message row on a replay.
-- The link is chat_media.message_id = chat_messages.id.
create table chat_media (
    id                  text primary key,
    message_id          text not null,
    chat_key            text not null,
    kind                text not null,               -- image, voice, audio, video, document, sticker
    provider_media_id   text,
    mime_type           text,
    size_bytes          bigint,
    sha256              text,                        -- hex
    bucket              text,
    path                text,
    filename            text,
    duration_seconds    double precision,
    page_count          integer,
    caption             text,
    transcript          text,
    extracted_text      text,
    status              text not null default 'pending',
    error               text,
    stored_at           timestamptz,
    expires_at          timestamptz,                 -- stored_at + MEDIA_RETENTION_DAYS
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    constraint chat_media_status_check check (status in ('pending', 'stored', 'failed', 'skipped', 'expired', 'erased'))
);
create index chat_media_message_idx on chat_media (message_id);
create index chat_media_chat_idx on chat_media (chat_key);
create index chat_media_sha256_idx on chat_media (sha256);
create index chat_media_expires_idx on chat_media (expires_at) where status = 'stored';

-- Chunks of a message's text (body, caption, transcript, document text) with their vectors.
-- The dimension follows EMBEDDINGS_DIMENSIONS (1536: text-embedding-3-small); changing it
-- needs a new migration and a re-embed.
create table message_embeddings (
    message_id    text not null,
    chunk_index   integer not null,
    chat_key      text not null,
    source        text not null default 'text',      -- text, transcript, caption or document
    chunk_text    text not null,
    start_token   integer not null,
    end_token     integer not null,
    chunk_count   integer not null,
    embedding     vector(1536) not null,
    model         text not null,
    created_at    timestamptz not null default now(),
    constraint message_embeddings_pkey primary key (message_id, chunk_index),
    constraint message_embeddings_source_check check (source in ('text', 'transcript', 'caption', 'document')),
    constraint message_embeddings_tokens_check check (start_token >= 0 and end_token > start_token)
);
create index message_embeddings_chat_idx on message_embeddings (chat_key);
create index message_embeddings_embedding_hnsw_idx on message_embeddings using hnsw (embedding vector_cosine_ops);

-- Where each projection has read up to, written in the same transaction as its rows.
create table projection_offsets (
    projection   text not null,
    topic        text not null,
    partition    integer not null,
    next_offset  bigint not null,
    updated_at   timestamptz not null default now(),
    constraint projection_offsets_pkey primary key (projection, topic, partition)
);

-- Semantic search over one chat's history: the closest chunks by cosine similarity.
create function match_session_messages(
    chat text,
    query_embedding vector(1536),
    match_count integer default 10,
    min_similarity double precision default 0.0
)
returns table (
    message_id          text,
    chunk_index         integer,
    chunk_text          text,
    source              text,
    similarity          double precision,
    sender_id           text,
    sender_name         text,
    direction           text,
    message_type        text,
    provider_timestamp  timestamptz
)
language sql stable
as $$
    select e.message_id, e.chunk_index, e.chunk_text, e.source,
           1 - (e.embedding <=> query_embedding) as similarity,
           m.sender_id, m.sender_name, m.direction, m.message_type, m.provider_timestamp
    from message_embeddings e
    left join chat_messages m on m.id = e.message_id
    where e.chat_key = chat
      and 1 - (e.embedding <=> query_embedding) >= min_similarity
      and m.deleted_at is null
    order by e.embedding <=> query_embedding
    limit match_count
$$;

alter table chats enable row level security;
alter table chat_messages enable row level security;
alter table chat_media enable row level security;
alter table message_embeddings enable row level security;
alter table projection_offsets enable row level security;
