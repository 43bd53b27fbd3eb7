-- The embeddings projection's own state and hybrid recall (vector + full text).
--
-- wa.embeddings carries "the chunks of message M for source S are now exactly these"
-- (ChunksReplaced) and "message M was deleted" (EmbeddingsRemoved). message_embeddings keeps
-- 0001's primary key (message_id, chunk_index): chunk_index runs through all of a message's
-- chunks in the order text, caption, transcript, document (then by position in the source),
-- and chunk_count is the message's total. The projection renumbers a message's other rows
-- in the same transaction when one of its sources changes length; start_token / end_token
-- stay offsets within the row's own source.

-- One row per (message, source) ever applied: which version is in message_embeddings, so a
-- replacement logged after a newer one (an edit that overtook its message) changes nothing,
-- and a replay of the same event is recognised and skipped. A source cleared by an empty
-- text keeps its row here with chunk_count 0.
create table message_embedding_sources (
    message_id   text not null,
    source       text not null,
    chat_key     text not null,
    version_at   timestamptz not null,
    event_id     text not null,
    text_sha256  text not null,
    token_count  integer not null,
    chunk_count  integer not null,
    truncated    boolean not null default false,
    model        text not null,
    updated_at   timestamptz not null default now(),
    constraint message_embedding_sources_pkey primary key (message_id, source),
    constraint message_embedding_sources_source_check check (source in ('text', 'transcript', 'caption', 'document'))
);

-- Deleted messages: their chunks are gone and a transcript, caption or document text that
-- arrives later (they often do) is not embedded back.
create table message_embedding_deletions (
    message_id  text primary key,
    chat_key    text not null,
    deleted_at  timestamptz not null,
    created_at  timestamptz not null default now()
);

-- Full-text side of recall. 'simple' keeps every word as written (lower-cased), so order
-- numbers, names and codes match exactly, in any language; no stemming, no stop words.
alter table message_embeddings
    add column chunk_tsv tsvector generated always as (to_tsvector('simple', chunk_text)) stored;
create index message_embeddings_chunk_tsv_idx on message_embeddings using gin (chunk_tsv);

-- Semantic search over one chat's history: the closest chunks by cosine similarity, never
-- of a deleted message.
--
-- A chat of at most exact_chunks chunks (almost every WhatsApp chat) is searched exactly:
-- its rows come from the chat_key index and are ranked by true distance, a few hundred
-- vectors, a millisecond or two. Filtering the global HNSW index by chat instead would
-- find nothing for a small chat: HNSW returns ef_search candidates over all chats and the
-- filter leaves none. A larger chat goes through the HNSW index with pgvector 0.8's
-- iterative scan (relaxed order, re-sorted here), which keeps scanning until enough rows
-- of the chat passed the filter (at most hnsw.max_scan_tuples), at ef_search candidates
-- per step. min_similarity is applied after the limit: it is monotone in the distance, so
-- the result is the same and the scan never walks the whole graph looking for rows that
-- cannot pass.
drop function match_session_messages(text, vector, integer, double precision);
create function match_session_messages(
    chat text,
    query_embedding vector(1536),
    match_count integer default 10,
    min_similarity double precision default 0.0,
    exact_chunks integer default 20000,
    ef_search integer default 100
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
language plpgsql stable
set hnsw.iterative_scan = 'relaxed_order'
set hnsw.ef_search = 100
as $$
declare
    chat_chunks integer;
begin
    select count(*) into chat_chunks
    from (select 1 from message_embeddings e where e.chat_key = chat limit exact_chunks + 1) s;
    if chat_chunks <= exact_chunks then
        return query
        with c as materialized (
            select e.message_id, e.chunk_index, e.chunk_text, e.source, e.embedding <=> query_embedding as distance
            from message_embeddings e
            where e.chat_key = chat
        )
        select c.message_id, c.chunk_index, c.chunk_text, c.source, 1 - c.distance,
               m.sender_id, m.sender_name, m.direction, m.message_type, m.provider_timestamp
        from c
        left join chat_messages m on m.id = c.message_id
        where m.deleted_at is null and 1 - c.distance >= min_similarity
        order by c.distance, c.message_id, c.chunk_index
        limit match_count;
    else
        perform set_config('hnsw.ef_search', greatest(ef_search, 1)::text, true);
        return query
        select t.message_id, t.chunk_index, t.chunk_text, t.source, t.similarity,
               t.sender_id, t.sender_name, t.direction, t.message_type, t.provider_timestamp
        from (
            select e.message_id, e.chunk_index, e.chunk_text, e.source,
                   1 - (e.embedding <=> query_embedding) as similarity,
                   m.sender_id, m.sender_name, m.direction, m.message_type, m.provider_timestamp
            from message_embeddings e
            left join chat_messages m on m.id = e.message_id
            where e.chat_key = chat and m.deleted_at is null
            order by e.embedding <=> query_embedding
            limit match_count
        ) t
        where t.similarity >= min_similarity
        order by t.similarity desc, t.message_id, t.chunk_index;
    end if;
end
$$;

alter table message_embedding_sources enable row level security;
alter table message_embedding_deletions enable row level security;
