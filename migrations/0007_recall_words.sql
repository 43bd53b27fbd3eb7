-- The full-text side of recall, one chat at a time, as a function beside match_session_messages.
--
-- The words of a question are OR-ed (any word may match; ranking by cover density sorts
-- it out), so a common word ("order", "delivery") matches a large part of the whole table.
-- Planned as one statement, Postgres intersected the chat's rows with the GIN index's
-- bitmap for those words: at 1,000,000 chunks that bitmap held every row and took 70 ms,
-- for a chat of 100 chunks. A chat of at most exact_chunks chunks is therefore read
-- through the chat_key index and its few rows tested directly (well under a millisecond
-- warm); only a larger chat uses the GIN index.
--
-- Words: as written, lower-cased ('simple'); words of under 4 letters are dropped unless
-- the question has nothing else or they hold a digit. A chunk must contain at least half of
-- the question's words, or one with a digit (an order number, a code), so "what did they say
-- about the delivery" does not return every chunk that says "about".
create function match_session_words(
    chat text,
    query_text text,
    match_count integer default 30,
    exact_chunks integer default 20000
)
returns table (message_id text, chunk_index integer, rank real)
language plpgsql stable
as $$
declare
    words text[];
    q tsquery;
    chat_chunks integer;
begin
    words := tsvector_to_array(to_tsvector('simple', coalesce(query_text, '')));
    words := coalesce(nullif(array(select x from unnest(words) x where length(x) >= 4 or x ~ '[0-9]'), '{}'), words);
    q := replace(plainto_tsquery('simple', array_to_string(words, ' '))::text, ' & ', ' | ')::tsquery;
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
        where c.chunk_tsv @@ q and m.deleted_at is null
          and (select 2 * count(*) >= cardinality(words) or bool_or(w ~ '[0-9]')
               from unnest(words) w where w = any(tsvector_to_array(c.chunk_tsv)))
        order by 3 desc, 1, 2
        limit match_count;
    else
        return query
        select e.message_id, e.chunk_index, ts_rank_cd(e.chunk_tsv, q, 1)
        from message_embeddings e
        left join chat_messages m on m.id = e.message_id
        where e.chat_key = chat and e.chunk_tsv @@ q and m.deleted_at is null
          and (select 2 * count(*) >= cardinality(words) or bool_or(w ~ '[0-9]')
               from unnest(words) w where w = any(tsvector_to_array(e.chunk_tsv)))
        order by 3 desc, 1, 2
        limit match_count;
    end if;
end
$$;
