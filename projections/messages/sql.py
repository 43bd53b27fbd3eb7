"""The messages projection's SQL: one bulk statement per table per batch, built from ``unnest``.

Each statement takes whole columns as arrays (asyncpg sends them in binary), so a batch of
thousands of events costs a handful of round trips. The merge expressions are the SQL twins
of the merges in ``projections.messages.rows``; across batches they make the result
independent of the order and the number of times events arrive. Parameters shared by the
merge statements: ``$1`` the status ranking, ``$2`` the media message types (an edit of
those changes the caption), ``$3`` whether deleted messages are redacted.
"""

from __future__ import annotations

_C = 'collate "C"'  # compare text by code point, as Python does


def _unnest(columns: list[tuple[str, str]], first: int) -> str:
    arrays = ", ".join(f"${first + n}::{kind}[]" for n, (_, kind) in enumerate(columns))
    return f"unnest({arrays}) as u({', '.join(name for name, _ in columns)})"


def _rank(expr: str) -> str:
    return f"coalesce(array_position($1::text[], {expr}), 0)"


def _status_sets(t: str, s: str) -> list[str]:
    up, tie = f"{_rank(s + '.status')} > {_rank(t + '.status')}", f"{_rank(s + '.status')} = {_rank(t + '.status')}"
    return [
        f"status = case when {up} then {s}.status else {t}.status end",
        f"status_at = case when {up} then {s}.status_at when {tie} then least({t}.status_at, {s}.status_at)"
        f" else {t}.status_at end",
        f"status_error = case when {up} then {s}.status_error when {tie} then least({t}.status_error {_C},"
        f" {s}.status_error) else {t}.status_error end",
    ]


def _newer_edit(t: str, s: str, current_text: str) -> str:
    return (
        f"({s}.edited_at is not null and ({t}.edited_at is null or {s}.edited_at > {t}.edited_at"
        f" or ({s}.edited_at = {t}.edited_at"
        f" and coalesce({s}.edit_text, '') {_C} > coalesce({current_text}, '') {_C})))"
    )


def _reactions_set(t: str, s: str) -> str:
    """Union of both maps; per reactor the latest entry, a removal winning a tie (``Reaction.rank``)."""
    return (
        f"reactions = case when {s}.reactions = '{{}}'::jsonb then {t}.reactions else ("
        "select coalesce(jsonb_object_agg(r.k, r.v), '{}'::jsonb) from ("
        "select distinct on (e.k) e.k, e.v from ("
        f"select key as k, value as v from jsonb_each({t}.reactions)"
        f" union all select key, value from jsonb_each({s}.reactions)) e"
        " order by e.k, (e.v->>'at')::timestamptz desc, (e.v->>'emoji') is null desc,"
        f" coalesce(e.v->>'emoji', '') {_C} desc) r) end"
    )


def message_merge(t: str, s: str) -> str:
    """SET list merging update rows ``s`` (status, edit, deletion, reactions) into chat_messages ``t``."""
    media = f"{t}.message_type = any($2::text[])"
    newer = _newer_edit(t, s, f"(case when {media} then {t}.caption else {t}.body end)")
    gone = f"($3::boolean and coalesce({t}.deleted_at, {s}.deleted_at) is not null)"
    return ",\n    ".join([
        *_status_sets(t, s),
        f"edited_at = case when {newer} then {s}.edited_at else {t}.edited_at end",
        f"body = case when {gone} then null when {newer} and not ({media}) then {s}.edit_text else {t}.body end",
        f"caption = case when {gone} then null when {newer} and {media} then {s}.edit_text else {t}.caption end",
        f"caption_generated = case when {gone} or ({newer} and {media}) then false else {t}.caption_generated end",
        f"transcript = case when {gone} then null else {t}.transcript end",
        f"extracted_text = case when {gone} then null else {t}.extracted_text end",
        f"raw_event = case when {gone} then null else {t}.raw_event end",
        f"deleted_at = least({t}.deleted_at, {s}.deleted_at)",
        _reactions_set(t, s),
        "updated_at = now()",
    ])  # fmt: skip


def pending_merge(t: str, s: str) -> str:
    """SET list merging update rows ``s`` into chat_message_pending ``t`` (same rules, no message yet)."""
    newer = _newer_edit(t, s, f"{t}.edit_text")
    return ",\n    ".join([
        *_status_sets(t, s),
        f"edited_at = case when {newer} then {s}.edited_at else {t}.edited_at end",
        f"edit_text = case when {newer} then {s}.edit_text else {t}.edit_text end",
        f"deleted_at = least({t}.deleted_at, {s}.deleted_at)",
        _reactions_set(t, s),
        "updated_at = now()",
    ])  # fmt: skip


CHAT_COLUMNS = [
    ("chat_key", "text"), ("provider", "text"), ("channel_id", "text"), ("chat_id", "text"),
    ("contact_phone", "text"), ("contact_name", "text"), ("group_name", "text"), ("profile_at", "timestamptz"),
    ("is_group", "boolean"), ("consent_state", "text"), ("consent_changed_at", "timestamptz"),
    ("last_inbound_at", "timestamptz"), ("last_outbound_at", "timestamptz"), ("last_message_at", "timestamptz"),
]  # fmt: skip
_NEWER_PROFILE = "(excluded.profile_at >= c.profile_at or c.profile_at is null)"
_CONSENT_WINS = (
    "(excluded.consent_changed_at is not null and (c.consent_changed_at is null"
    " or excluded.consent_changed_at > c.consent_changed_at"
    " or (excluded.consent_changed_at = c.consent_changed_at and excluded.consent_state = 'opted_out')))"
)
UPSERT_CHATS = f"""
insert into chats as c ({", ".join(n for n, _ in CHAT_COLUMNS)}, service_window_closes_at)
select u.chat_key, u.provider, u.channel_id, u.chat_id, u.contact_phone, u.contact_name, u.group_name, u.profile_at,
       u.is_group, coalesce(u.consent_state, 'unknown'), u.consent_changed_at, u.last_inbound_at,
       u.last_outbound_at, u.last_message_at, u.last_inbound_at + interval '24 hours'
from {_unnest(CHAT_COLUMNS, 1)}
on conflict (chat_key) do update set
    contact_phone = coalesce(c.contact_phone, excluded.contact_phone),
    contact_name = case when {_NEWER_PROFILE} then coalesce(excluded.contact_name, c.contact_name)
                        else coalesce(c.contact_name, excluded.contact_name) end,
    group_name = case when {_NEWER_PROFILE} then coalesce(excluded.group_name, c.group_name)
                      else coalesce(c.group_name, excluded.group_name) end,
    profile_at = greatest(c.profile_at, excluded.profile_at),
    is_group = c.is_group or excluded.is_group,
    consent_state = case when {_CONSENT_WINS} then excluded.consent_state else c.consent_state end,
    consent_changed_at = greatest(c.consent_changed_at, excluded.consent_changed_at),
    last_inbound_at = greatest(c.last_inbound_at, excluded.last_inbound_at),
    service_window_closes_at = greatest(c.last_inbound_at, excluded.last_inbound_at) + interval '24 hours',
    last_outbound_at = greatest(c.last_outbound_at, excluded.last_outbound_at),
    last_message_at = greatest(c.last_message_at, excluded.last_message_at),
    updated_at = now()
"""

MESSAGE_COLUMNS = [
    ("id", "text"), ("chat_key", "text"), ("provider", "text"), ("channel_id", "text"),
    ("provider_message_id", "text"), ("origin", "text"), ("direction", "text"), ("message_type", "text"),
    ("provider_timestamp", "timestamptz"), ("received_at", "timestamptz"), ("raw_event", "text"),
    ("source_topic", "text"), ("source_partition", "integer"), ("source_offset", "bigint"), ("sender_id", "text"),
    ("sender_name", "text"), ("body", "text"), ("caption", "text"), ("reply_to_provider_message_id", "text"),
    ("forwarded", "boolean"), ("template", "text"),
]  # fmt: skip
_UPGRADE = "(m.message_type = 'unsupported' and excluded.message_type <> 'unsupported')"
_GONE = "($1::boolean and m.deleted_at is not null)"


def _fill(column: str) -> str:
    return (f"{column} = case when {_UPGRADE} then coalesce(excluded.{column}, m.{column})"
            f" else coalesce(m.{column}, excluded.{column}) end")  # fmt: skip


def _fill_text(column: str, replaceable: str = _UPGRADE) -> str:
    return (f"{column} = case when {_GONE} then null"
            f" when ({replaceable}) and m.edited_at is null then coalesce(excluded.{column}, m.{column})"
            f" else coalesce(m.{column}, excluded.{column}) end")  # fmt: skip


# The caption may hold the AI description of the image (caption_generated, written by
# projections.media.handoff when the sender wrote none): a sender caption replaces it.
_CAPTION_REPLACEABLE = f"{_UPGRADE} or m.caption_generated"
_CAPTION_GENERATED = (
    f"caption_generated = case when {_GONE} then false when ({_CAPTION_REPLACEABLE}) and m.edited_at is null"
    " and excluded.caption is not null then false else m.caption_generated end"
)


_MESSAGE_NAMES = [n for n, _ in MESSAGE_COLUMNS]
# A copy of a message already stored: first writer wins, gaps are filled, an 'unsupported' row
# is replaced by the real message, and a redacted message stays redacted.
INSERT_MESSAGES = f"""
insert into chat_messages as m ({", ".join(_MESSAGE_NAMES)})
select {", ".join("u.raw_event::jsonb" if n == "raw_event" else f"u.{n}" for n in _MESSAGE_NAMES)}
from {_unnest(MESSAGE_COLUMNS, 2)}
on conflict (id) do update set
    {_fill("sender_id")}, {_fill("sender_name")}, {_fill("reply_to_provider_message_id")}, {_fill("template")},
    {_fill_text("body")}, {_fill_text("caption", _CAPTION_REPLACEABLE)}, {_CAPTION_GENERATED},
    forwarded = m.forwarded or excluded.forwarded,
    message_type = case when {_UPGRADE} then excluded.message_type else m.message_type end,
    raw_event = case when {_GONE} then null when {_UPGRADE} then excluded.raw_event else m.raw_event end,
    source_topic = case when {_UPGRADE} then excluded.source_topic else m.source_topic end,
    source_partition = case when {_UPGRADE} then excluded.source_partition else m.source_partition end,
    source_offset = case when {_UPGRADE} then excluded.source_offset else m.source_offset end,
    updated_at = now()
"""

# What arrived before its message (statuses, edits, ...) is folded in when the message lands.
MERGE_PENDING = f"""
with s as (delete from chat_message_pending where message_id = any($4::text[]) returning *)
update chat_messages m set
    {message_merge("m", "s")}
from s where m.id = s.message_id
"""

UPDATE_COLUMNS = [
    ("message_id", "text"), ("chat_key", "text"), ("status", "text"), ("status_at", "timestamptz"),
    ("status_error", "text"), ("edit_text", "text"), ("edited_at", "timestamptz"), ("deleted_at", "timestamptz"),
    ("reactions", "text"),
]  # fmt: skip
_UPDATE_NAMES = [n for n, _ in UPDATE_COLUMNS]
# Updates of stored messages are applied; the others wait in chat_message_pending.
APPLY_UPDATES = f"""
with s as (
    select {", ".join("u.reactions::jsonb as reactions" if n == "reactions" else f"u.{n}" for n in _UPDATE_NAMES)}
    from {_unnest(UPDATE_COLUMNS, 4)}
), applied as (
    update chat_messages m set
    {message_merge("m", "s")}
    from s where m.id = s.message_id
    returning m.id
)
insert into chat_message_pending as p ({", ".join(_UPDATE_NAMES)})
select {", ".join(f"s.{n}" for n in _UPDATE_NAMES)} from s
where not exists (select 1 from applied a where a.id = s.message_id)
on conflict (message_id) do update set
    {pending_merge("p", "excluded")}
"""


def link_users(users_table: str) -> str:
    """Link chats of the batch to the users row with the same phone digits (USERS_TABLE is a
    validated identifier). An empty candidate set makes Postgres skip the scan of users."""
    return rf"""
update chats c set user_id = m.user_id, updated_at = now()
from (
    select w.phone, min(u.id::text) as user_id
    from (select distinct contact_phone as phone from chats
          where chat_key = any($1::text[]) and user_id is null and contact_phone is not null) w
    join {users_table} u on regexp_replace(u.phone::text, '\D', '', 'g') = w.phone
    group by w.phone
) m
where c.chat_key = any($1::text[]) and c.user_id is null and c.contact_phone = m.phone
"""


VERSION_COLUMNS = [
    ("message_id", "text"), ("event_id", "text"), ("kind", "text"), ("text", "text"),
    ("version_at", "timestamptz"), ("source_topic", "text"), ("source_partition", "integer"),
    ("source_offset", "bigint"),
]  # fmt: skip
_VERSION_NAMES = [n for n, _ in VERSION_COLUMNS]
# A message is deleted when its row or its parked updates say so.
_DELETED = (
    "(exists (select 1 from chat_messages m where m.id = {id} and m.deleted_at is not null)"
    " or exists (select 1 from chat_message_pending p where p.message_id = {id} and p.deleted_at is not null))"
)
# Every version of a message's text, first copy of an event wins. Run after the batch's messages
# and updates: with $1 (DELETED_MESSAGES=redact) a deleted message gets no version.
INSERT_VERSIONS = f"""
insert into chat_message_versions ({", ".join(_VERSION_NAMES)})
select {", ".join(f"u.{n}" for n in _VERSION_NAMES)}
from {_unnest(VERSION_COLUMNS, 2)}
where not ($1::boolean and {_DELETED.format(id="u.message_id")})
on conflict (message_id, event_id) do nothing
"""
# DELETED_MESSAGES=redact: the versions of the messages ``$1`` that are deleted (all of them when null).
REDACT_VERSIONS = f"""
delete from chat_message_versions v
where ($1::text[] is null or v.message_id = any($1::text[])) and {_DELETED.format(id="v.message_id")}
"""

CONSENT_COLUMNS = [
    ("event_id", "text"), ("chat_key", "text"), ("state", "text"), ("occurred_at", "timestamptz"),
    ("message_id", "text"), ("source_topic", "text"), ("source_partition", "integer"), ("source_offset", "bigint"),
]  # fmt: skip
INSERT_CONSENT = f"""
insert into chat_consent_changes ({", ".join(n for n, _ in CONSENT_COLUMNS)})
select * from {_unnest(CONSENT_COLUMNS, 1)}
on conflict (event_id) do nothing
"""

# The outbound messages of chat $1[i] sent at or after $2[i] judged again from the chat's events
# (``projections.messages.compliance``): opted out when the latest consent change at or before
# the send was an opt-out (a tie: the opt-out wins, as on chats); outside the window when, in a
# 1:1 chat, no inbound message came in the 24 hours up to the send and it used no template.
# Returns the flags it set that were not there (for the metrics).
JUDGE_OUTBOUND = """
with judged as (
    select m.id,
           case
               when (select cc.state from chat_consent_changes cc
                     where cc.chat_key = m.chat_key and cc.occurred_at <= m.provider_timestamp
                     order by cc.occurred_at desc, cc.state desc limit 1) = 'opted_out' then 'opted_out'
               when m.template is null and not c.is_group and not exists (
                     select 1 from chat_messages i
                     where i.chat_key = m.chat_key and i.direction = 'inbound'
                       and i.provider_timestamp <= m.provider_timestamp
                       and i.provider_timestamp > m.provider_timestamp - interval '24 hours') then 'outside_window'
           end as flag
    from unnest($1::text[], $2::timestamptz[]) as a(chat_key, since)
    join chats c on c.chat_key = a.chat_key
    join chat_messages m on m.chat_key = a.chat_key and m.direction = 'outbound' and m.provider_timestamp >= a.since
)
update chat_messages m set compliance_flag = j.flag
from judged j
where m.id = j.id and m.compliance_flag is distinct from j.flag
returning m.compliance_flag
"""
