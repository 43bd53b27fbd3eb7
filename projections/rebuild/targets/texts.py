"""The text chat_media hands to chat_messages (``projections.media.handoff``), as rebuilds see it.

Two projections write a message's derived text (transcript, extracted text, AI caption): the
messages projection when it writes the message, the media projection when it writes the
result. Whichever of the two is rebuilt, the rows must come out as a replay of both from
offset 0 would leave them, which ``copy_text`` reaches by merging (it never clears a text):

- a messages rebuild starts from empty rows, so copying the live chat_media's text onto them
  (``projections.rebuild.targets.messages``, in its settle) is already that replay;
- a media rebuild leaves chat_messages in place, so a merge would keep a text the rebuilt
  chat_media no longer backs (one a damaged or hand-edited chat_media held). ``REFRESH`` sets
  instead what ``copy_text`` makes of a message that never had derived text: transcript and
  extracted text exactly chat_media's, the caption the sender's or else chat_media's (then
  ``caption_generated``); a message deleted under DELETED_MESSAGES=redact is left alone (the
  deletion cleared them and nothing is copied to it). Only rows whose values differ are
  written, so after a rebuild that matched, nothing is.

Both hold every message-text lock at the swap: while they do, neither projector copies text.
"""

from __future__ import annotations

import asyncpg

from projections.media import handoff

REFRESH = """
with x as (
    select distinct on (message_id) message_id, transcript, extracted_text, caption
    from chat_media order by message_id, id
), t as (
    select m.id, x.transcript, x.extracted_text,
           coalesce(case when m.caption_generated then null else m.caption end, x.caption) as caption,
           (m.caption is null or m.caption_generated) and x.caption is not null as caption_generated
    from chat_messages m left join x on x.message_id = m.id
    where (x.message_id is not null or m.transcript is not null or m.extracted_text is not null
           or m.caption_generated)
      and not ($1::boolean and m.deleted_at is not null)
)
update chat_messages m set transcript = t.transcript, extracted_text = t.extracted_text, caption = t.caption,
    caption_generated = t.caption_generated, updated_at = now()
from t
where m.id = t.id and (m.transcript, m.extracted_text, m.caption, m.caption_generated)
      is distinct from (t.transcript, t.extracted_text, t.caption, t.caption_generated)
"""


async def lock_every_text(conn: asyncpg.Connection) -> None:
    """Every message-text bucket, with the handoff's own statement: copies into chat_messages wait."""
    await conn.execute(handoff._LOCK, list(range(handoff.BUCKETS)))


async def refresh(conn: asyncpg.Connection, *, redact_deleted: bool) -> int:
    """Make chat_messages' derived text the one ``chat_media`` (as this connection resolves it)
    implies; return how many messages changed."""
    status = await conn.execute(REFRESH, redact_deleted)
    return int(status.split()[-1])
