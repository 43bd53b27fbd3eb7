"""The retention SQL. Every statement takes the chat key, the cut-off or the message ids
(arrays). A message's age is its ``received_at``, the time every event about it carries."""

#: The messages of a chat received before the cut-off.
MESSAGE_IDS = "select id from chat_messages where chat_key = $1 and received_at < $2"

THEIR_MEDIA = "select path, sha256, status from chat_media where message_id = any($1::text[])"
# Rows kept that use the same objects: a stored row keeps its object; any row keeps the cached
# AI result of its file (a transcript of the same voice note forwarded elsewhere).
OTHERS_MEDIA = """
select path, sha256, status from chat_media
where message_id <> all($1::text[]) and (sha256 = any($2::text[]) or path = any($3::text[]))
"""

#: (table, statement, what $1 is): MessagesExpired, run in this order (children first).
EXPIRE: tuple[tuple[str, str, str], ...] = (
    ("message_embeddings", "delete from message_embeddings where message_id = any($1::text[])", "messages"),
    ("message_embedding_sources", "delete from message_embedding_sources where message_id = any($1::text[])",
     "messages"),
    ("message_embedding_deletions", "delete from message_embedding_deletions where message_id = any($1::text[])",
     "messages"),
    ("chat_message_versions", "delete from chat_message_versions where message_id = any($1::text[])", "messages"),
    ("chat_message_pending", "delete from chat_message_pending where message_id = any($1::text[])", "messages"),
    ("chat_media", "delete from chat_media where message_id = any($1::text[])", "messages"),
    ("chat_messages", "delete from chat_messages where id = any($1::text[])", "messages"),
    ("enrichment_cache", "delete from enrichment_cache where sha256 = any($1::text[])", "hashes"),
)
#: Dead letters about the chat whose every letter failed before the cut-off (their payloads are
#: the expired messages'): the rebuild leaves those letters out, as it does erased ones.
EXPIRE_LETTERS = "delete from dead_letters where key = $1 and last_seen < $2"

DERIVED_SOURCES = ["caption", "transcript", "document"]

#: TextsCleared: the text goes, what produced it (model, time, enrichment outcome) stays, as a
#: projection of the stripped results would leave it (``contracts.erasure.Ledger.screen``).
CLEAR_MEDIA = """
update chat_media set transcript = null, caption = null, extracted_text = null, updated_at = now()
where message_id = any($1::text[])
  and (transcript is not null or caption is not null or extracted_text is not null)
"""
CLEAR_MESSAGES = """
update chat_messages set transcript = null, extracted_text = null,
    caption = case when caption_generated then null else caption end, caption_generated = false,
    updated_at = now()
where id = any($1::text[]) and (transcript is not null or extracted_text is not null or caption_generated)
"""
CLEAR_CHUNKS = "delete from message_embeddings where message_id = any($1::text[]) and source = any($2::text[])"
CLEAR_SOURCES = "delete from message_embedding_sources where message_id = any($1::text[]) and source = any($2::text[])"
# The chunks left are the message's own text, which comes first (contracts.embeddings.SOURCES):
# their indexes already run 0..n-1, only the count changes.
RECOUNT = """
update message_embeddings e set chunk_count = c.n
from (select message_id, count(*)::integer as n from message_embeddings
      where message_id = any($1::text[]) group by message_id) c
where e.message_id = c.message_id and e.chunk_count <> c.n
"""
CLEAR_CACHE = "delete from enrichment_cache where sha256 = any($1::text[])"

SAVE_CUTOFF = """
insert into retention_cutoffs as r (chat_hash, messages_before, texts_before)
values ($1, $2, $3)
on conflict (chat_hash) do update set
    messages_before = greatest(r.messages_before, excluded.messages_before),
    texts_before = greatest(r.texts_before, excluded.texts_before),
    updated_at = now()
"""
