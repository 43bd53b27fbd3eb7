"""The erasures projector's SQL. Deletes run children first; every statement takes the chat keys
(or message ids, hashes) as one array."""

CANDIDATE_CHATS = """
select chat_key, contact_phone from chats
union select distinct chat_key, null from chat_media
union select distinct chat_key, null from chat_message_pending
union select distinct chat_key, null from message_embedding_sources
"""

THEIR_MEDIA = "select path, sha256 from chat_media where chat_key = any($1::text[])"
OTHERS_MEDIA = """
select path, sha256 from chat_media
where chat_key <> all($1::text[]) and (sha256 = any($2::text[]) or path = any($3::text[]))
"""

MESSAGE_IDS = """
select id from chat_messages where chat_key = any($1::text[])
union select message_id from chat_message_pending where chat_key = any($1::text[])
"""

#: (table, statement, what $1 is): run in this order.
DELETES: tuple[tuple[str, str, str], ...] = (
    ("message_embeddings", "delete from message_embeddings where chat_key = any($1::text[])", "chats"),
    ("message_embedding_sources", "delete from message_embedding_sources where chat_key = any($1::text[])", "chats"),
    ("message_embedding_deletions", "delete from message_embedding_deletions where chat_key = any($1::text[])", "chats"),
    ("chat_message_versions", "delete from chat_message_versions where message_id = any($1::text[])", "messages"),
    ("chat_message_pending", "delete from chat_message_pending where chat_key = any($1::text[])", "chats"),
    ("chat_media", "delete from chat_media where chat_key = any($1::text[])", "chats"),
    ("chat_consent_changes", "delete from chat_consent_changes where chat_key = any($1::text[])", "chats"),
    ("chat_messages", "delete from chat_messages where chat_key = any($1::text[])", "chats"),
    ("chats", "delete from chats where chat_key = any($1::text[])", "chats"),
    ("dead_letters", "delete from dead_letters where key = any($1::text[])", "chats"),
    ("enrichment_cache", "delete from enrichment_cache where sha256 = any($1::text[])", "hashes"),
)

INSERT_ERASURE = """
insert into erasures (erasure_id, subject_kind, subject_hash, requested_at, requested_by, chats, removed,
                      source_partition, source_offset, chat_hashes)
values ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10::text[])
on conflict (erasure_id) do nothing
"""
