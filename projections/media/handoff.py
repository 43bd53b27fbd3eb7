"""How text derived from media reaches ``chat_messages``, whichever projector comes second.

The transcript, the document text and the AI description of an image live in ``chat_media``
(the media projection's table). ``chat_messages`` gets a copy, written by two projectors:

- the media projector, after it upserts ``chat_media``, copies the text of the batch's
  messages to their rows that already exist;
- the messages projector, after it inserts (or edits) media messages, copies whatever text
  ``chat_media`` already holds for them: a result logged before its message, or applied
  before the message's row was written.

``copy_text`` is the only statement either uses, so both apply the same rule:

- ``transcript`` / ``extracted_text`` = chat_media's (the newest result's) when it has one;
- ``caption`` is the sender's caption; only when the sender wrote none (null) does it take
  chat_media.caption, and ``caption_generated`` records that, so a sender caption arriving
  later (a copy of the message, an edit, see ``projections.messages.sql``) replaces the AI
  text, and a newer AI description replaces an older one but never the sender's;
- nothing is written to a message deleted while DELETED_MESSAGES=redact.

The two projectors run in separate transactions. Without a common lock the media projector
could update no row (the message is not committed yet) while the messages projector reads
chat_media without the new text (not committed yet either), and the text would never reach
the message. So both take ``lock_messages`` (transaction-scoped advisory locks on buckets of
message ids, sorted, before their first write) for the messages they copy to: whoever
commits second sees the other's rows. Buckets bound the locks a transaction holds (Postgres
keeps advisory locks in its shared lock table) at the cost of sometimes waiting for an
unrelated message of the same bucket.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import asyncpg

BUCKETS = 256
_LOCK = "select pg_advisory_xact_lock(hashtext('msgmem/message-text'), b) from unnest($1::int[]) as b"

COPY_TEXT = """
update chat_messages m set
    transcript = coalesce(x.transcript, m.transcript),
    extracted_text = coalesce(x.extracted_text, m.extracted_text),
    caption = case when x.caption is not null and (m.caption is null or m.caption_generated)
                   then x.caption else m.caption end,
    caption_generated = m.caption_generated or (m.caption is null and x.caption is not null),
    updated_at = now()
from (
    select distinct on (message_id) message_id, transcript, extracted_text, caption
    from chat_media where message_id = any($2::text[])
    order by message_id, id
) x
where m.id = x.message_id
  and not ($1::boolean and m.deleted_at is not null)
  and ((x.transcript is not null and x.transcript is distinct from m.transcript)
       or (x.extracted_text is not null and x.extracted_text is distinct from m.extracted_text)
       or (x.caption is not null and (m.caption is null or m.caption_generated)
           and x.caption is distinct from m.caption))
"""


def buckets(message_ids: Iterable[str]) -> list[int]:
    """The sorted lock buckets of ``message_ids`` (crc32: the same in every process)."""
    return sorted({zlib.crc32(mid.encode()) % BUCKETS for mid in message_ids})


async def lock_messages(conn: asyncpg.Connection, message_ids: Iterable[str]) -> None:
    """Serialise with the other projector's copy for these messages, until the transaction ends."""
    wanted = buckets(message_ids)
    if wanted:
        await conn.execute(_LOCK, wanted)


async def copy_text(conn: asyncpg.Connection, message_ids: list[str], *, redact_deleted: bool) -> None:
    """Copy chat_media's text to these messages' rows (those that exist), under ``lock_messages``."""
    if message_ids:
        await conn.execute(COPY_TEXT, redact_deleted, message_ids)
