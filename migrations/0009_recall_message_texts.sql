-- Word recall over every message text, whether or not it has embeddings.
--
-- match_session_words (0007) searches message_embeddings' chunks, which exist only where the
-- embed stage ran (OPENAI_API_KEY set). match_session_texts searches chat_messages itself:
-- body, caption, transcript and extracted text, so recall finds words with no AI configured,
-- and finds what the chunks miss (a text past EMBEDDINGS_MAX_CHUNKS, a message not embedded yet).
--
-- The words of a question are read by the same rules in both (the helpers below): as written,
-- lower-cased ('simple'); words of under 4 letters dropped unless the question has nothing else
-- or they hold a digit; any word may match, and a hit holds at least half of them or one with
-- a digit.

-- The searchable words of a message, and a GIN index over them. An index on an expression,
-- not a stored generated column: that would rewrite the whole table, and Postgres refuses
-- updates of a REPLICA IDENTITY FULL table in a publication (Supabase Realtime) that does not
-- publish generated columns. Capped at 100,000 characters: a tsvector is at most 1 MB, and a
-- longer text (a long PDF) would make the row's write fail. A plain SQL function, inlined, so
-- queries written with it use the index.
create function message_text_tsv(body text, caption text, transcript text, extracted_text text)
returns tsvector
language sql immutable parallel safe
as $$
    select pg_catalog.to_tsvector('simple'::regconfig, pg_catalog.left(
        coalesce(body, '') || ' ' || coalesce(caption, '') || ' ' || coalesce(transcript, '') || ' '
        || coalesce(extracted_text, ''), 100000))
$$;
create index chat_messages_text_tsv_idx on chat_messages
    using gin (message_text_tsv(body, caption, transcript, extracted_text));

create function recall_words(query_text text) returns text[]
language sql immutable
as $$
    select coalesce(nullif(array(select x from unnest(w) x where length(x) >= 4 or x ~ '[0-9]'), '{}'), w)
    from (select tsvector_to_array(to_tsvector('simple'::regconfig, coalesce(query_text, ''))) as w) s
$$;

create function recall_query(words text[]) returns tsquery
language sql immutable
as $$
    select replace(plainto_tsquery('simple'::regconfig, array_to_string(words, ' '))::text, ' & ', ' | ')::tsquery
$$;

-- At least half of the question's words, or one with a digit (an order number, a code).
create function recall_enough_words(doc tsvector, words text[]) returns boolean
language sql immutable
as $$
    select coalesce(2 * count(*) >= cardinality(words) or bool_or(w ~ '[0-9]'), false)
    from unnest(words) w where w = any(tsvector_to_array(doc))
$$;

-- 0007's function on the shared helpers: the same rows, in the same order.
create or replace function match_session_words(
    chat text,
    query_text text,
    match_count integer default 30,
    exact_chunks integer default 20000
)
returns table (message_id text, chunk_index integer, rank real)
language plpgsql stable
as $$
declare
    words text[] := recall_words(query_text);
    q tsquery := recall_query(words);
    chat_chunks integer;
begin
    if numnode(q) = 0 then
        return;
    end if;
    select count(*) into chat_chunks
    from (select 1 from message_embeddings e where e.chat_key = chat limit exact_chunks + 1) s;
    if chat_chunks <= exact_chunks then
        return query
        with c as materialized (
            select e.message_id, e.chunk_index, e.chunk_tsv from message_embeddings e where e.chat_key = chat
        )
        select c.message_id, c.chunk_index, ts_rank_cd(c.chunk_tsv, q, 1)
        from c
        left join chat_messages m on m.id = c.message_id
        where c.chunk_tsv @@ q and m.deleted_at is null and recall_enough_words(c.chunk_tsv, words)
        order by 3 desc, 1, 2
        limit match_count;
    else
        return query
        select e.message_id, e.chunk_index, ts_rank_cd(e.chunk_tsv, q, 1)
        from message_embeddings e
        left join chat_messages m on m.id = e.message_id
        where e.chat_key = chat and e.chunk_tsv @@ q and m.deleted_at is null
          and recall_enough_words(e.chunk_tsv, words)
        order by 3 desc, 1, 2
        limit match_count;
    end if;
end
$$;

-- The texts of one chat's messages that hold the question's words: one row per (message,
-- source) of the best match_count messages, source being text (body), caption, transcript or
-- document (extracted text), ranked by cover density over that text, with an excerpt: the
-- whole text up to 1,000 characters, else the passages around the words. Never a deleted
-- message, whichever projector saw the deletion first (chat_messages.deleted_at or
-- message_embedding_deletions). Like match_session_words, a chat of at most exact_rows messages is read through
-- its chat_key index and its rows tested directly; a larger one through the GIN index.
create function match_session_texts(
    chat text,
    query_text text,
    match_count integer default 30,
    exact_rows integer default 20000
)
returns table (message_id text, source text, rank real, excerpt text)
language plpgsql stable
as $$
declare
    words text[] := recall_words(query_text);
    q tsquery := recall_query(words);
    chat_rows integer;
    hits text[];
begin
    if numnode(q) = 0 then
        return;
    end if;
    select count(*) into chat_rows
    from (select 1 from chat_messages m where m.chat_key = chat limit exact_rows + 1) s;
    if chat_rows <= exact_rows then
        hits := array(
            with c as materialized (
                select m.id, message_text_tsv(m.body, m.caption, m.transcript, m.extracted_text) as text_tsv
                from chat_messages m where m.chat_key = chat and m.deleted_at is null
            )
            select c.id from c where c.text_tsv @@ q and recall_enough_words(c.text_tsv, words)
            order by ts_rank_cd(c.text_tsv, q, 1) desc, c.id limit match_count
        );
    else
        hits := array(
            select m.id from chat_messages m
            where m.chat_key = chat and message_text_tsv(m.body, m.caption, m.transcript, m.extracted_text) @@ q
              and m.deleted_at is null
              and recall_enough_words(message_text_tsv(m.body, m.caption, m.transcript, m.extracted_text), words)
            order by ts_rank_cd(message_text_tsv(m.body, m.caption, m.transcript, m.extracted_text), q, 1) desc, m.id
            limit match_count
        );
    end if;
    return query
    select m.id, x.source, ts_rank_cd(x.tsv, q, 1),
           case when length(x.body) <= 1000 then x.body
                else ts_headline('simple'::regconfig, left(x.body, 100000), q,
                                 'MaxFragments=3, MinWords=12, MaxWords=40, StartSel="", StopSel="", FragmentDelimiter=" … "')
           end
    from chat_messages m
    cross join lateral (
        select v.source, v.body, to_tsvector('simple'::regconfig, left(v.body, 100000)) as tsv
        from (values ('text', m.body), ('caption', m.caption), ('transcript', m.transcript),
                     ('document', m.extracted_text)) v(source, body)
        where v.body is not null
    ) x
    where m.id = any(hits) and x.tsv @@ q
      and not exists (select 1 from message_embedding_deletions d where d.message_id = m.id)
    order by 3 desc, 1, 2
    limit match_count;
end
$$;
