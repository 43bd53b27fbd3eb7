"""Retention sweep of MESSAGE_RETENTION_DAYS and TRANSCRIPT_RETENTION_DAYS: appends a
``MessagesExpired`` / ``TextsCleared`` per chat with something past a policy to wa.retention.

Run by `msgmem retention sweep` (:func:`sweep_once`) and by the media worker's timer, beside
the media sweep (every MEDIA_SWEEP_INTERVAL_SECONDS). Like the media sweep it reads the
tables and writes none: the erasures projector applies the events to every table and to
storage (``projections.retention``), as it applies erasures, and records the cut-offs every
reader of the log then respects (``contracts.retention``).

A sweep is safe to repeat or to run twice at once: a cut-off only moves forward and applying
one again removes nothing more, so no lock is taken. Until the projector has applied a sweep's
events the rows are still there, and a sweep in that window appends them again (with a later
cut-off, which covers the same messages). `preview` computes, read-only, what the next sweep
would remove under each policy (for `msgmem status`).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from contracts import retention
from contracts.retention import MessagesExpired, TextsCleared
from contracts.settings import Settings
from streams.common.outputs import KafkaOutputs, OutputWriter
from streams.common.records import Output
from streams.media.retention import ChatPast, cutoff, events, goes_at

_PAST_MESSAGES = """
select chat_key, count(*) as messages, min(received_at) as oldest
from chat_messages where received_at < $1 group by chat_key
"""
# Messages whose derived text some table still holds, found from the rows holding it (small
# partial indexes of migration 0016: a cleared text leaves them), not by walking every old message.
_WITH_TEXT = """
select id as message_id from chat_messages where transcript is not null or extracted_text is not null or caption_generated
union select message_id from chat_media where transcript is not null or caption is not null or extracted_text is not null
union select message_id from message_embeddings where source <> 'text'
"""
# Messages the messages policy removes anyway are left to it.
_PAST_TEXTS = f"""
select m.chat_key, count(*) as messages, min(m.received_at) as oldest
from ({_WITH_TEXT}) x join chat_messages m on m.id = x.message_id
where m.received_at < $1 and ($2::timestamptz is null or m.received_at >= $2)
group by m.chat_key
"""
_OLDEST_TEXT = f"""
select min(m.received_at) from ({_WITH_TEXT}) x join chat_messages m on m.id = x.message_id
where $1::timestamptz is null or m.received_at >= $1
"""
_MESSAGE_FILES = """
select count(distinct c.path) from chat_media c join chat_messages m on m.id = c.message_id
where m.received_at < $1 and c.status = 'stored'
"""
_MEDIA_DUE = "select count(*), min(expires_at) from chat_media where status = 'stored' and expires_at <= $1"
_MEDIA_NEXT = "select min(expires_at) from chat_media where status = 'stored' and expires_at is not null"


@dataclass(frozen=True)
class RetentionReport:
    chats_expired: int = 0  # MessagesExpired events appended
    messages_expired: int = 0
    chats_cleared: int = 0  # TextsCleared events appended
    messages_cleared: int = 0


async def plan(conn: asyncpg.Connection, settings: Settings, now: datetime) -> list[MessagesExpired | TextsCleared]:
    """The events a sweep at ``now`` appends (read-only)."""
    out: list[MessagesExpired | TextsCleared] = []
    messages_before = cutoff(settings.message_retention_days, now)
    texts_before = cutoff(settings.transcript_retention_days, now)
    if messages_before is not None:
        rows = await conn.fetch(_PAST_MESSAGES, messages_before)
        out += events("messages", (ChatPast(**dict(r)) for r in rows), before=messages_before, now=now,
                      days=settings.message_retention_days or 0)  # fmt: skip
    if texts_before is not None:
        rows = await conn.fetch(_PAST_TEXTS, texts_before, messages_before)
        out += events("texts", (ChatPast(**dict(r)) for r in rows), before=texts_before, now=now,
                      days=settings.transcript_retention_days)  # fmt: skip
    return out


def output(event: MessagesExpired | TextsCleared) -> Output:
    """A wa.retention record, keyed by chat, its type in ``mm-type`` like the other topics'."""
    return Output(retention.TOPIC, event.key, event.encode(), (("mm-type", event.type.encode()),))


async def sweep(conn: asyncpg.Connection, settings: Settings, outputs: OutputWriter, *,
                now: datetime | None = None) -> RetentionReport:  # fmt: skip
    """Append the events of a sweep at ``now``; return what they cover."""
    planned = await plan(conn, settings, now or datetime.now(UTC))
    if planned:
        await outputs.write([output(e) for e in planned])
    expired = [e for e in planned if isinstance(e, MessagesExpired)]
    cleared = [e for e in planned if isinstance(e, TextsCleared)]
    return RetentionReport(len(expired), sum(e.messages for e in expired), len(cleared),
                           sum(e.messages for e in cleared))  # fmt: skip


async def sweep_once(settings: Settings) -> RetentionReport:
    """One sweep with its own connection and producer: for the CLI and the media worker's timer.
    Nothing to do (both policies keep forever) connects to nothing."""
    if not settings.message_retention_days and not settings.transcript_retention_days:
        return RetentionReport()
    async with AsyncExitStack() as resources:
        outputs = await KafkaOutputs.start(settings)
        resources.push_async_callback(outputs.stop)
        conn = await asyncpg.connect(settings.database_url, statement_cache_size=settings.statement_cache_size)
        resources.push_async_callback(conn.close)
        report = await sweep(conn, settings, outputs)
    return report


# --- what the next sweep would do, for `msgmem status` ------------------------------------------


@dataclass(frozen=True)
class PolicyPreview:
    """One policy as `msgmem status` shows it: ``days`` (None: keeps forever), how many rows
    (and files) the next sweep would remove or clear, and when the oldest row it covers goes
    (in the past: at the next sweep; None: nothing to go)."""

    policy: str  # MESSAGE_RETENTION_DAYS, TRANSCRIPT_RETENTION_DAYS, MEDIA_RETENTION_DAYS
    days: int | None
    due: int = 0
    files: int = 0
    oldest_goes_at: datetime | None = None

    def as_json(self) -> dict[str, object]:
        return {"policy": self.policy, "days": self.days, "due": self.due, "files": self.files,
                "oldest_goes_at": self.oldest_goes_at.isoformat() if self.oldest_goes_at else None}  # fmt: skip

    def render(self) -> str:
        if not self.days:
            return f"{self.policy}: keep forever"
        what = {"MESSAGE_RETENTION_DAYS": "messages removed", "TRANSCRIPT_RETENTION_DAYS": "messages' texts cleared",
                "MEDIA_RETENTION_DAYS": "files expired"}[self.policy]  # fmt: skip
        files = f" ({self.files} files)" if self.files else ""
        when = self.oldest_goes_at.isoformat(timespec="seconds") if self.oldest_goes_at else "nothing yet"
        return f"{self.policy}={self.days}: next sweep {self.due} {what}{files}; oldest goes {when}"


async def preview(conn: asyncpg.Connection, settings: Settings, now: datetime | None = None) -> list[PolicyPreview]:
    """Per policy, what a sweep at ``now`` would remove (read-only)."""
    now = now or datetime.now(UTC)
    out: list[PolicyPreview] = []
    message_days, text_days = settings.message_retention_days or None, settings.transcript_retention_days or None
    messages_before = cutoff(message_days, now)
    if messages_before is None:
        out.append(PolicyPreview("MESSAGE_RETENTION_DAYS", None))
    else:
        due = sum(r["messages"] for r in await conn.fetch(_PAST_MESSAGES, messages_before))
        files = await conn.fetchval(_MESSAGE_FILES, messages_before)
        oldest = await conn.fetchval("select min(received_at) from chat_messages")
        out.append(PolicyPreview("MESSAGE_RETENTION_DAYS", message_days, due, files, goes_at(oldest, message_days)))
    texts_before = cutoff(text_days, now)
    if texts_before is None:
        out.append(PolicyPreview("TRANSCRIPT_RETENTION_DAYS", None))
    else:
        due = sum(r["messages"] for r in await conn.fetch(_PAST_TEXTS, texts_before, messages_before))
        oldest = await conn.fetchval(_OLDEST_TEXT, messages_before)  # the oldest text held, past or not
        out.append(PolicyPreview("TRANSCRIPT_RETENTION_DAYS", text_days, due, 0, goes_at(oldest, text_days)))
    media_days = settings.media_retention_days or None
    if media_days is None:
        out.append(PolicyPreview("MEDIA_RETENTION_DAYS", None))
    else:
        due, _ = await conn.fetchrow(_MEDIA_DUE, now)
        nxt = await conn.fetchval(_MEDIA_NEXT)
        out.append(PolicyPreview("MEDIA_RETENTION_DAYS", media_days, due, 0, nxt))
    return out
