"""The chat memory for agents, read from the projected tables: chats, pages of messages, and
an agent's context (``get_context``). The HTTP routes (``projections.recall.app``) and the
MCP tools (``msgmem.mcp_server``) call these same functions; they only read.

Each function takes an asyncpg pool (with ``projections.embeddings.vectors.register_vector``
as its ``init``, which recall needs) and parameters already validated by the models of
``projections.recall.request``. A chat key no chat has is ``UnknownChat``; a cursor that does
not decode is ``projections.recall.cursor.InvalidCursor``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from contracts.errors import describe_error
from contracts.settings import Settings
from projections.recall import cursor
from projections.recall.context import WindowMessage, assemble, role_of
from projections.recall.media_links import MediaLinks
from projections.recall.models import (
    ChatDetail, ChatPage, ChatSummary, Consent, ContextAnswer, Counts, Enrichment, MediaObject, Message, MessagePage,
    Reaction, SemanticUse, ServiceWindow,
)  # fmt: skip
from projections.recall.request import MAX_QUERY_CHARS, ChatsQuery, ContextQuery, MessagesQuery
from projections.recall.search import QueryEmbedder, RecallConfig, RecallDisabled, Snippet, UnknownChat, search
from runtime.errors import TransientError
from runtime.openai_client import ModelRejected
from runtime.tokenizer import load_tokenizer

SERVICE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class MemoryConfig:
    recall: RecallConfig = RecallConfig()
    redact_deleted: bool = False
    tokenizer: str = "cl100k_base"
    window: int = 20
    max_tokens: int = 4000
    recall_snippets: int = 8
    min_similarity: float = 0.3

    @classmethod
    def from_settings(cls, settings: Settings) -> "MemoryConfig":
        return cls(RecallConfig.from_settings(settings), settings.deleted_messages == "redact",
                   settings.embeddings_tokenizer, settings.context_window_messages, settings.context_max_tokens,
                   settings.context_recall_snippets, settings.recall_min_similarity)  # fmt: skip


# --- chats ------------------------------------------------------------------------------------

_CHAT_COLUMNS = """c.chat_key, c.provider, c.channel_id, c.chat_id, c.contact_phone, c.contact_name, c.is_group,
c.group_name, c.consent_state, c.consent_changed_at, c.last_message_at, c.last_inbound_at, c.last_outbound_at,
c.updated_at, c.created_at, c.user_id, c.service_window_closes_at"""

# $1 provider, $2 channel, $3 phone digits, $4 updated since, $5/$6 cursor (updated_at, chat_key), $7 rows.
CHATS_SQL = f"""
select {_CHAT_COLUMNS} from chats c
where ($1::text is null or c.provider = $1) and ($2::text is null or c.channel_id = $2)
  and ($3::text is null or c.contact_phone = $3) and ($4::timestamptz is null or c.updated_at >= $4)
  and ($5::timestamptz is null or (c.updated_at, c.chat_key) < ($5, $6::text))
order by c.updated_at desc, c.chat_key desc
limit $7
"""

CHAT_SQL = f"""
select {_CHAT_COLUMNS}, s.messages, s.inbound, s.outbound, s.deleted,
       (select count(*) from chat_media x where x.chat_key = c.chat_key) as media
from chats c
cross join lateral (
    select count(*) as messages, count(*) filter (where m.direction = 'inbound') as inbound,
           count(*) filter (where m.direction = 'outbound') as outbound,
           count(*) filter (where m.deleted_at is not null) as deleted
    from chat_messages m where m.chat_key = c.chat_key
) s
where c.chat_key = $1
"""


def _summary(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "chat": r["chat_key"], "provider": r["provider"], "channel_id": r["channel_id"], "chat_id": r["chat_id"],
        "contact_phone": r["contact_phone"], "contact_name": r["contact_name"], "is_group": r["is_group"],
        "group_name": r["group_name"], "consent_state": r["consent_state"], "last_message_at": r["last_message_at"],
        "last_inbound_at": r["last_inbound_at"], "last_outbound_at": r["last_outbound_at"],
        "updated_at": r["updated_at"], "service_window_closes_at": r["service_window_closes_at"],
    }  # fmt: skip


async def list_chats(pool: asyncpg.Pool, query: ChatsQuery) -> ChatPage:
    """Chats matching the filters, most recently updated first, one page of ``query.limit``."""
    at, key = cursor.decode(query.cursor, "cursor") if query.cursor else (None, None)
    rows = await pool.fetch(CHATS_SQL, query.provider, query.channel, query.phone_digits, query.updated_since, at,
                            key, query.limit + 1)  # fmt: skip
    page = rows[: query.limit]
    more = len(rows) > query.limit
    return ChatPage(chats=[ChatSummary(**_summary(r)) for r in page],
                    next_cursor=cursor.encode(page[-1]["updated_at"], page[-1]["chat_key"]) if more else None)


# The console's chat list: by last message (else creation), newest first, paged by a cursor in
# that order (the index of migration 0012). Only the conditions asked are written into the
# statement (one statement text per combination): a generic plan of "($n is null or ...)" could
# not use an index for the one present. A name or phone fragment of three characters or more is
# first narrowed by its three-character pieces (the GIN index of migration 0015), then checked.
_ACTIVITY = "coalesce(c.last_message_at, c.created_at)"
_SEARCH_PIECES = ("chat_search_pieces(coalesce(c.contact_name, '') || ' ' || coalesce(c.group_name, '') || ' ' "
                  "|| coalesce(c.contact_phone, ''))")  # fmt: skip
BROWSE_SQL = f"""
select {_CHAT_COLUMNS}, {_ACTIVITY} as activity from chats c
where {{where}}
order by {_ACTIVITY} desc, c.chat_key desc
limit $1
"""


def _like_fragment(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def browse_statement(
    text: str | None = None, provider: str | None = None, channel: str | None = None, after: tuple | None = None,  # type: ignore[type-arg]
    limit: int = 50,
) -> tuple[str, list[Any]]:  # fmt: skip
    """The chat list's statement and its arguments for these filters (see ``browse_chats``)."""
    args: list[Any] = [limit]
    conditions: list[str] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if provider:
        conditions.append(f"c.provider = {arg(provider)}")
    if channel:
        conditions.append(f"c.channel_id = {arg(channel)}")
    text = (text or "").strip() or None
    if text:
        digits = "".join(ch for ch in text if ch.isdigit())
        pattern = arg(_like_fragment(text))
        found = [f"c.contact_name ilike {pattern}", f"c.group_name ilike {pattern}"]
        narrow = [f"{_SEARCH_PIECES} @> chat_search_pieces({arg(text)})"] if len(text) >= 3 else []
        if digits:
            prefix = arg(_like_fragment(digits)[1:])  # the digits at the start of the phone
            found.append(f"c.contact_phone like {prefix}")
            if len(digits) >= 3:
                narrow.append(f"{_SEARCH_PIECES} @> chat_search_pieces({arg(digits)})")
            else:
                narrow = []
        if narrow:
            conditions.append("(" + " or ".join(narrow) + ")")
        conditions.append("(" + " or ".join(found) + ")")
    if after is not None:
        at, key = after
        conditions.append(f"({_ACTIVITY}, c.chat_key) < ({arg(at)}::timestamptz, {arg(key)}::text)")
    return BROWSE_SQL.format(where=" and ".join(conditions) or "true"), args


async def browse_chats(
    pool: asyncpg.Pool, *, text: str | None = None, provider: str | None = None, channel: str | None = None,
    limit: int = 50, after: str | None = None,
) -> ChatPage:  # fmt: skip
    """Chats by their last message, newest first (the web console's list): ``text`` matches the
    contact's or group's name (anywhere, any case) or the start of the contact's phone digits;
    ``after`` is the ``next_cursor`` of the previous page."""
    position = cursor.decode(after, "after") if after else None
    sql, args = browse_statement(text, provider or None, channel or None, position, limit + 1)
    rows = await pool.fetch(sql, *args)
    page = rows[:limit]
    more = len(rows) > limit
    return ChatPage(chats=[ChatSummary(**_summary(r)) for r in page],
                    next_cursor=cursor.encode(page[-1]["activity"], page[-1]["chat_key"]) if more else None)


# The (provider, channel) pairs chats are on, read as a skip scan of the chats' unique index
# (provider, channel_id, chat_id): one index probe per pair, however many chats there are.
PROVIDERS_SQL = """
with recursive pairs as (
    (select c.provider, c.channel_id from chats c order by c.provider, c.channel_id limit 1)
    union all
    select n.provider, n.channel_id from pairs p
    cross join lateral (
        select c.provider, c.channel_id from chats c where (c.provider, c.channel_id) > (p.provider, p.channel_id)
        order by c.provider, c.channel_id limit 1
    ) n
)
select provider, channel_id from pairs
"""


async def chat_providers(pool: asyncpg.Pool) -> list[tuple[str, str]]:
    """The (provider, channel) pairs chats are on, for the console's filters."""
    rows = await pool.fetch(PROVIDERS_SQL)
    return [(r["provider"], r["channel_id"]) for r in rows]


async def chat_summary(pool: asyncpg.Pool, chat: str) -> ChatSummary:
    """One chat's names and channel, without the counts (a primary-key read, whatever its size)."""
    r = await pool.fetchrow(f"select {_CHAT_COLUMNS} from chats c where c.chat_key = $1", chat)
    if r is None:
        raise UnknownChat()
    return ChatSummary(**_summary(r))


async def chat_detail(pool: asyncpg.Pool, chat: str, *, now: datetime | None = None) -> ChatDetail:
    """One chat: consent, the customer-service window (last inbound + 24 h) and message counts."""
    r = await pool.fetchrow(CHAT_SQL, chat)
    if r is None:
        raise UnknownChat()
    closes = r["last_inbound_at"] + SERVICE_WINDOW if r["last_inbound_at"] else None
    return ChatDetail(
        **_summary(r), user_id=r["user_id"], created_at=r["created_at"],
        consent=Consent(state=r["consent_state"], changed_at=r["consent_changed_at"]),
        service_window=ServiceWindow(open=closes is not None and (now or datetime.now(UTC)) < closes, closes_at=closes),
        counts=Counts(messages=r["messages"], inbound=r["inbound"], outbound=r["outbound"], deleted=r["deleted"],
                      media=r["media"]),
    )  # fmt: skip


# --- messages ---------------------------------------------------------------------------------

_MESSAGE_COLUMNS = """m.id, m.provider_message_id, m.direction, m.origin, m.message_type, m.sender_id, m.sender_name,
m.provider_timestamp, m.received_at, m.body, m.caption, m.caption_generated, m.transcript, m.extracted_text,
m.reply_to_provider_message_id, m.forwarded, m.status, m.status_at, m.status_error, m.edited_at, m.deleted_at,
m.reactions, m.template, m.compliance_flag"""

# $1 chat, $2/$3 cursor (provider_timestamp, id) or nulls, $4 rows.
OLDER_SQL = f"""
select {_MESSAGE_COLUMNS} from chat_messages m
where m.chat_key = $1 and ($2::timestamptz is null or (m.provider_timestamp, m.id) < ($2, $3::text))
order by m.provider_timestamp desc, m.id desc
limit $4
"""
NEWER_SQL = f"""
select {_MESSAGE_COLUMNS} from chat_messages m
where m.chat_key = $1 and (m.provider_timestamp, m.id) > ($2, $3::text)
order by m.provider_timestamp, m.id
limit $4
"""
MEDIA_SQL = "select * from chat_media where message_id = any($1::text[]) order by message_id, id"
KNOWN_SQL = "select is_group from chats where chat_key = $1"


async def list_messages(
    pool: asyncpg.Pool, chat: str, query: MessagesQuery, links: MediaLinks, *, own_base: str | None = None,
) -> MessagePage:  # fmt: skip
    """A page of ``query.limit`` messages (oldest first): the latest, or those before / after a cursor.
    ``own_base``: the recall service's URL, under which it serves local media."""
    if await pool.fetchval(KNOWN_SQL, chat) is None:
        raise UnknownChat()
    anchor = query.after or query.before
    at, key = cursor.decode(anchor, "after" if query.after else "before") if anchor else (None, None)
    rows = await pool.fetch(NEWER_SQL if query.after else OLDER_SQL, chat, at, key, query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    if not query.after:
        rows.reverse()
    media = await _media(pool, [r["id"] for r in rows], links, own_base)
    messages = [_message(r, media.get(r["id"], [])) for r in rows]
    first, last = (messages[0].cursor, messages[-1].cursor) if messages else (anchor, anchor)
    older, newer = (first if query.after or more else None), (last if query.after and more or query.before else None)
    return MessagePage(chat=chat, messages=messages, older_cursor=older, newer_cursor=newer)


AT_SQL = f"""
select {_MESSAGE_COLUMNS} from chat_messages m
where m.chat_key = $1 and (m.provider_timestamp, m.id) >= (
    select t.provider_timestamp, t.id from chat_messages t where t.chat_key = $1 and t.id = $2)
order by m.provider_timestamp, m.id
limit $3
"""


async def messages_from(
    pool: asyncpg.Pool, chat: str, message_id: str, limit: int, links: MediaLinks, *, own_base: str | None = None,
) -> MessagePage:  # fmt: skip
    """A page of ``limit`` messages (oldest first) starting at message ``message_id`` (the web
    console's jump to a search hit); the latest page when the chat has no such message."""
    if await pool.fetchval(KNOWN_SQL, chat) is None:
        raise UnknownChat()
    rows = await pool.fetch(AT_SQL, chat, message_id, limit + 1)
    if not rows:
        return await list_messages(pool, chat, MessagesQuery(limit=limit), links, own_base=own_base)
    more = len(rows) > limit
    rows = rows[:limit]
    media = await _media(pool, [r["id"] for r in rows], links, own_base)
    messages = [_message(r, media.get(r["id"], [])) for r in rows]
    return MessagePage(chat=chat, messages=messages, older_cursor=messages[0].cursor,
                       newer_cursor=messages[-1].cursor if more else None)  # fmt: skip


VERSIONS_SQL = """
select message_id, kind, text, version_at from chat_message_versions
where message_id = any($1::text[]) order by message_id, version_at, event_id
"""


@dataclass(frozen=True)
class Version:
    kind: str  # original or edit
    text: str | None
    at: datetime


async def message_versions(pool: asyncpg.Pool, ids: Sequence[str]) -> dict[str, list[Version]]:
    """The texts each of ``ids`` had, oldest first (an edited message's history)."""
    out: dict[str, list[Version]] = {}
    for r in await pool.fetch(VERSIONS_SQL, list(ids)) if ids else []:
        out.setdefault(r["message_id"], []).append(Version(r["kind"], r["text"], r["version_at"]))
    return out


QUOTED_SQL = """
select provider_message_id, id, direction, sender_name, sender_id, deleted_at is not null as deleted,
       left(coalesce(body, caption, transcript, extracted_text, '['||message_type||']'), $3) as text
from chat_messages where chat_key = $1 and provider_message_id = any($2::text[])
"""


@dataclass(frozen=True)
class Quoted:
    """The message a reply quotes, as its bubble shows it (a deleted one says so, no text)."""

    message_id: str
    direction: str
    sender: str | None
    text: str | None


async def quoted_messages(pool: asyncpg.Pool, chat: str, provider_ids: Sequence[str],
                          max_chars: int = 160) -> dict[str, Quoted]:  # fmt: skip
    """The messages of ``chat`` that replies quote, by provider message id (one indexed read)."""
    out: dict[str, Quoted] = {}
    for r in await pool.fetch(QUOTED_SQL, chat, sorted(set(provider_ids)), max_chars) if provider_ids else []:
        out[r["provider_message_id"]] = Quoted(r["id"], r["direction"], r["sender_name"] or r["sender_id"],
                                               None if r["deleted"] else r["text"])  # fmt: skip
    return out


async def _media(pool: asyncpg.Pool, ids: Sequence[str], links: MediaLinks,
                 own_base: str | None) -> dict[str, list[MediaObject]]:  # fmt: skip
    out: dict[str, list[MediaObject]] = {}
    for r in await pool.fetch(MEDIA_SQL, list(ids)) if ids else []:
        link = await links.link(r["status"], r["path"], own_base)
        out.setdefault(r["message_id"], []).append(MediaObject(
            id=r["id"], kind=r["kind"], mime_type=r["mime_type"], size_bytes=r["size_bytes"], filename=r["filename"],
            duration_seconds=r["duration_seconds"], page_count=r["page_count"], status=r["status"], error=r["error"],
            stored_at=r["stored_at"], expires_at=r["expires_at"], description=r["caption"], url=link.url,
            url_expires_at=link.expires_at, url_unavailable=link.unavailable,
            enrichment=Enrichment(status=r["enrichment_status"], error=r["enrichment_error"], at=r["enrichment_at"],
                                  transcript_model=r["transcript_model"], caption_model=r["caption_model"],
                                  extracted_model=r["extracted_model"]),
        ))  # fmt: skip
    return out


def _reactions(raw: str | None) -> list[Reaction]:
    """The active reactions (a removal is a tombstone with no emoji), oldest first."""
    entries = orjson.loads(raw) if raw else {}
    active = [Reaction(reactor=k, emoji=v["emoji"], name=v.get("name"), at=v["at"]) for k, v in entries.items()
              if v.get("emoji")]  # fmt: skip
    return sorted(active, key=lambda x: (x.at, x.reactor))


def _message(r: asyncpg.Record, media: list[MediaObject]) -> Message:
    return Message(
        id=r["id"], cursor=cursor.encode(r["provider_timestamp"], r["id"]), provider_message_id=r["provider_message_id"],
        direction=r["direction"], origin=r["origin"], role=role_of(r["origin"], r["direction"]), type=r["message_type"],
        sender_id=r["sender_id"], sender_name=r["sender_name"], occurred_at=r["provider_timestamp"],
        received_at=r["received_at"], body=r["body"], caption=r["caption"], caption_generated=r["caption_generated"],
        transcript=r["transcript"], extracted_text=r["extracted_text"],
        reply_to_provider_message_id=r["reply_to_provider_message_id"], forwarded=r["forwarded"], status=r["status"],
        status_at=r["status_at"], status_error=r["status_error"], edited_at=r["edited_at"], deleted_at=r["deleted_at"],
        reactions=_reactions(r["reactions"]), media=media, template=r["template"],
        compliance_flag=r["compliance_flag"],
    )  # fmt: skip


# --- an agent's context -----------------------------------------------------------------------

# $1 chat, $2 leave out deleted messages (DELETED_MESSAGES=redact), $3 rows.
WINDOW_SQL = """
select m.id, m.provider_timestamp, m.origin, m.direction, m.message_type, m.sender_id, m.sender_name, m.body,
       m.caption, m.caption_generated, m.transcript, m.extracted_text, m.edited_at, m.deleted_at,
       x.caption as description, x.filename
from chat_messages m
left join lateral (
    select d.caption, d.filename from chat_media d where d.message_id = m.id order by d.id limit 1
) x on true
where m.chat_key = $1 and not ($2::boolean and m.deleted_at is not null)
order by m.provider_timestamp desc, m.id desc
limit $3
"""

# What the contact said last: typed text, else a voice note's transcript, else their own caption.
_CONTACT_TEXT = "coalesce(m.body, m.transcript, case when not m.caption_generated then m.caption end)"
LATEST_INBOUND_SQL = f"""
select {_CONTACT_TEXT} from chat_messages m
where m.chat_key = $1 and m.direction = 'inbound' and m.deleted_at is null and {_CONTACT_TEXT} is not null
order by m.provider_timestamp desc, m.id desc
limit 1
"""


async def get_context(
    pool: asyncpg.Pool, embedder: QueryEmbedder | None, chat: str, query: ContextQuery = ContextQuery(),
    config: MemoryConfig = MemoryConfig(),
) -> ContextAnswer:  # fmt: skip
    """An agent's context for ``chat``: recall snippets for ``query.q`` (default: the contact's
    latest inbound text) that are not in the window, then the last ``query.window`` messages,
    in OpenAI chat-message format within ``query.max_tokens`` (``projections.recall.context``).

    Recall that cannot embed the query (the API down or refusing) falls back to exact words and
    ``semantic`` says why; recall switched off gives no snippets, with the setting named.
    """
    size = query.window or config.window
    budget = query.max_tokens or config.max_tokens
    k = config.recall_snippets if query.k is None else query.k
    # One connection for every statement (each pool.fetch is an acquire and a reset, a round
    # trip of its own); recall by meaning embeds the query first, so it takes one of its own
    # rather than hold this one during an API call.
    async with pool.acquire() as conn:
        is_group = await conn.fetchval(KNOWN_SQL, chat)
        if is_group is None:
            raise UnknownChat()
        rows = await conn.fetch(WINDOW_SQL, chat, config.redact_deleted, size)
        window = [_window_message(r) for r in reversed(rows)]
        text, source = query.q, "given" if query.q else None
        if text is None:
            latest = await conn.fetchval(LATEST_INBOUND_SQL, chat)
            text, source = (latest[:MAX_QUERY_CHARS], "latest_inbound") if latest else (None, None)
        in_window = {m.message_id for m in window}
        if embedder is None:
            snippets, semantic = await _recall(conn, embedder, chat, text, k, in_window, config)
    if embedder is not None:
        snippets, semantic = await _recall(pool, embedder, chat, text, k, in_window, config)
    assembled = assemble(window, snippets, load_tokenizer(config.tokenizer), budget, is_group=is_group)
    return ContextAnswer(
        chat=chat, query=text, query_source=source, max_tokens=budget, window=size, tokens=assembled.tokens,
        tokenizer=config.tokenizer, recall_included=assembled.recall_count > 0, recall_count=assembled.recall_count,
        window_count=assembled.window_count, trimmed=assembled.trimmed, semantic=semantic,
        messages=assembled.messages,
    )  # fmt: skip


async def _recall(
    pool: asyncpg.Pool | asyncpg.Connection, embedder: QueryEmbedder | None, chat: str, text: str | None, k: int, in_window: set[str],
    config: MemoryConfig,
) -> tuple[list[Snippet], SemanticUse]:  # fmt: skip
    if not text or k == 0:
        return [], SemanticUse(used=False, reason="no recall asked (k=0)" if text else "nothing to recall for")
    wanted = k + len(in_window)  # snippets of window messages are left out
    try:
        answer = await search(pool, embedder, chat, text, wanted, config.min_similarity, config=config.recall)
    except RecallDisabled as exc:
        return [], SemanticUse(used=False, reason=str(exc))
    except (TransientError, ModelRejected) as exc:
        words_only = replace(config.recall, without_embedder=f"the query could not be embedded ({describe_error(exc)})")
        answer = await search(pool, None, chat, text, wanted, config.min_similarity, config=words_only)
    snippets = [s for s in answer.snippets if s.message_id not in in_window][:k]
    return snippets, SemanticUse(used=answer.semantic.used, reason=answer.semantic.reason)


def _window_message(r: asyncpg.Record) -> WindowMessage:
    return WindowMessage(
        message_id=r["id"], occurred_at=r["provider_timestamp"], origin=r["origin"], direction=r["direction"],
        message_type=r["message_type"], sender_id=r["sender_id"], sender_name=r["sender_name"], body=r["body"],
        caption=r["caption"], caption_generated=r["caption_generated"], transcript=r["transcript"],
        extracted_text=r["extracted_text"], description=r["description"], filename=r["filename"],
        edited=r["edited_at"] is not None, deleted=r["deleted_at"] is not None,
    )  # fmt: skip
