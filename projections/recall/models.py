"""What the memory API answers, as pydantic models: the OpenAPI document, the HTTP bodies and
the MCP tools' results are all these, so the three cannot drift apart.

Times are UTC ISO 8601. Cursors are opaque strings (``projections.recall.cursor``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from projections.recall.search import Snippet

Role = Literal["user", "assistant", "system"]


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(frozen=True, json_schema_extra={"examples": list(examples)})


class ErrorBody(BaseModel):
    """Every refusal: a stable ``error`` code and a ``reason`` naming fields and error types, never values."""

    model_config = _examples({"error": "invalid_query", "reason": "limit: less_than_equal"})

    error: str
    reason: str


CHAT_EXAMPLE: dict[str, Any] = {
    "chat": "whapi:TESTCH-A1B2C:15550001234", "provider": "whapi", "channel_id": "TESTCH-A1B2C",
    "chat_id": "15550001234", "contact_phone": "15550001234", "contact_name": "Dana Silva", "is_group": False,
    "group_name": None, "consent_state": "unknown", "last_message_at": "2026-11-20T09:25:00+00:00",
    "last_inbound_at": "2026-11-20T09:25:00+00:00", "last_outbound_at": "2026-11-20T09:16:00+00:00",
    "updated_at": "2026-11-20T09:25:02+00:00", "service_window_closes_at": "2026-11-21T09:25:00+00:00",
}  # fmt: skip


class ChatSummary(BaseModel):
    """One conversation: a contact or a group on one business channel of one provider."""

    model_config = _examples(CHAT_EXAMPLE)

    chat: str = Field(description="the chat key, provider:channel:chat id")
    provider: str
    channel_id: str
    chat_id: str
    contact_phone: str | None = Field(description="E.164 digits; null for groups and hidden (@lid) ids")
    contact_name: str | None
    is_group: bool
    group_name: str | None
    consent_state: Literal["unknown", "opted_in", "opted_out"]
    last_message_at: datetime | None
    last_inbound_at: datetime | None
    last_outbound_at: datetime | None
    updated_at: datetime
    service_window_closes_at: datetime | None = Field(
        None, description="when the 24-hour customer service window the contact's last message opened closes")


class ChatPage(BaseModel):
    """Chats most recently updated first; ``next_cursor`` (null at the end) gives the next page."""

    model_config = _examples({"chats": [CHAT_EXAMPLE], "next_cursor": None})

    chats: list[ChatSummary]
    next_cursor: str | None


class Consent(BaseModel):
    state: Literal["unknown", "opted_in", "opted_out"]
    changed_at: datetime | None


class ServiceWindow(BaseModel):
    """WhatsApp's customer-service window: free-form replies until 24 h after the contact's last message."""

    open: bool
    closes_at: datetime | None = Field(description="last inbound message + 24 h; null before any")


class Counts(BaseModel):
    messages: int
    inbound: int
    outbound: int
    deleted: int
    media: int


class ChatDetail(ChatSummary):
    model_config = _examples(CHAT_EXAMPLE | {
        "user_id": None, "created_at": "2026-11-20T09:15:02+00:00",
        "consent": {"state": "unknown", "changed_at": None},
        "service_window": {"open": True, "closes_at": "2026-11-21T09:25:00+00:00"},
        "counts": {"messages": 9, "inbound": 8, "outbound": 1, "deleted": 0, "media": 5},
    })  # fmt: skip

    user_id: str | None
    created_at: datetime
    consent: Consent
    service_window: ServiceWindow
    counts: Counts


class Reaction(BaseModel):
    reactor: str
    emoji: str
    name: str | None
    at: datetime


class Enrichment(BaseModel):
    """What the AI stages made of a media object: 'done' once any produced text, else the latest skip or failure."""

    status: Literal["done", "skipped", "failed"] | None
    error: str | None
    at: datetime | None
    transcript_model: str | None
    caption_model: str | None
    extracted_model: str | None


class MediaObject(BaseModel):
    id: str
    kind: str = Field(description="image, voice, audio, video, document, sticker")
    mime_type: str | None
    size_bytes: int | None
    filename: str | None
    duration_seconds: float | None
    page_count: int | None
    status: Literal["pending", "stored", "failed", "skipped", "expired", "erased"]
    error: str | None
    stored_at: datetime | None
    expires_at: datetime | None
    description: str | None = Field(description="the AI description of an image")
    url: str | None = Field(description="a short-lived signed URL of the file; null when there is none")
    url_expires_at: datetime | None
    url_unavailable: str | None = Field(description="why there is no URL (not stored, or the setting that is missing)")
    enrichment: Enrichment


MESSAGE_EXAMPLE: dict[str, Any] = {
    "id": "0b7d4b8e-5d7c-5f7e-9a55-8a1c0f0e2b11", "cursor": "MjAyNi0xMS0yMFQwOToxNTowMCswMDowMHwwYjdk",
    "provider_message_id": "Wq7.tXa1Bc2De3Fg4Hi5J-gBgTk0aA", "direction": "inbound", "origin": "user",
    "role": "user", "type": "text", "sender_id": "15550001234", "sender_name": "Dana Silva",
    "occurred_at": "2026-11-20T09:15:00+00:00", "received_at": "2026-11-20T09:15:01+00:00",
    "body": "Hi, is order 4271 still arriving on Thursday?", "caption": None, "caption_generated": False,
    "transcript": None, "extracted_text": None, "reply_to_provider_message_id": None, "forwarded": False,
    "status": None, "status_at": None, "status_error": None, "edited_at": None, "deleted_at": None,
    "reactions": [], "media": [], "template": None, "compliance_flag": None,
}  # fmt: skip


class Message(BaseModel):
    """One message with its latest text (edits applied), delivery status, reactions and media."""

    model_config = _examples(MESSAGE_EXAMPLE)

    id: str
    cursor: str = Field(description="this message as a position: pass it as before= or after=")
    provider_message_id: str
    direction: Literal["inbound", "outbound"]
    origin: Literal["user", "agent", "system"]
    role: Role = Field(description="the OpenAI chat role: the contact is the user, the business the assistant")
    type: str
    sender_id: str | None
    sender_name: str | None
    occurred_at: datetime
    received_at: datetime
    body: str | None
    caption: str | None
    caption_generated: bool = Field(description="true: caption is the AI description (the sender wrote none)")
    transcript: str | None
    extracted_text: str | None
    reply_to_provider_message_id: str | None
    forwarded: bool
    status: str | None
    status_at: datetime | None
    status_error: str | None
    edited_at: datetime | None
    deleted_at: datetime | None
    reactions: list[Reaction]
    media: list[MediaObject]
    template: str | None = Field(None, description="the approved template an outbound send used, when its sender said")
    compliance_flag: Literal["opted_out", "outside_window"] | None = Field(
        None, description="an outbound message sent while the chat was opted out, or outside the 24-hour customer "
        "service window without a template",
    )


class MessagePage(BaseModel):
    """Messages oldest first. ``older_cursor`` (as before=) and ``newer_cursor`` (as after=) give the
    neighbouring pages; null where this page reaches the first or the latest message."""

    model_config = _examples({"chat": CHAT_EXAMPLE["chat"], "messages": [MESSAGE_EXAMPLE], "older_cursor": None,
                              "newer_cursor": None})  # fmt: skip

    chat: str
    messages: list[Message]
    older_cursor: str | None
    newer_cursor: str | None


class ContextMeta(BaseModel):
    kind: Literal["recall", "window"] = Field(description="recall: a snippet recalled for the query; window: a recent message")
    message_id: str
    occurred_at: datetime | None
    sender_id: str | None
    sender_name: str | None
    direction: str | None
    type: str | None
    source: str | None = Field(description="recall: text, transcript, caption or document")
    score: float | None = Field(description="recall: rank fusion score (higher is better)")
    edited: bool
    deleted: bool
    truncated: bool = Field(description="the content was cut to fit max_tokens")
    tokens: int


class ContextMessage(BaseModel):
    """An OpenAI chat message (role, content) and where it came from."""

    role: Role
    content: str
    metadata: ContextMeta


class Trimmed(BaseModel):
    any: bool
    recall: int = Field(description="recall snippets left out, lowest score first")
    window: int = Field(description="window messages left out, oldest first")
    truncated: bool = Field(description="the newest message was cut to fit")


class SemanticUse(BaseModel):
    used: bool
    reason: str | None


CONTEXT_EXAMPLE: dict[str, Any] = {
    "chat": CHAT_EXAMPLE["chat"], "query": "Hi, is order 4271 still arriving on Thursday?",
    "query_source": "latest_inbound", "max_tokens": 4000, "window": 20, "tokens": 97, "tokenizer": "cl100k_base",
    "recall_included": False, "recall_count": 0, "window_count": 2,
    "trimmed": {"any": False, "recall": 0, "window": 0, "truncated": False},
    "semantic": {"used": False, "reason": "OPENAI_API_KEY is not set"},
    "messages": [
        {"role": "user", "content": "Hi, is order 4271 still arriving on Thursday?",
         "metadata": {"kind": "window", "message_id": "0b7d4b8e-5d7c-5f7e-9a55-8a1c0f0e2b11",
                      "occurred_at": "2026-11-20T09:15:00+00:00", "sender_id": "15550001234",
                      "sender_name": "Dana Silva", "direction": "inbound", "type": "text", "source": None,
                      "score": None, "edited": False, "deleted": False, "truncated": False, "tokens": 16}},
        {"role": "assistant", "content": "Yes Dana, Thursday after 3 pm.",
         "metadata": {"kind": "window", "message_id": "6a0f3c52-0f0c-5a43-8a55-2f0d1c3e4b21",
                      "occurred_at": "2026-11-20T09:16:00+00:00", "sender_id": "15550001000",
                      "sender_name": "Acme Support", "direction": "outbound", "type": "text", "source": None,
                      "score": None, "edited": False, "deleted": False, "truncated": False, "tokens": 13}},
    ],
}  # fmt: skip


class ContextAnswer(BaseModel):
    """An agent's context for a chat: recall snippets for the query, then the last messages,
    within ``max_tokens`` (OpenAI's chat-message count with the model's tokenizer)."""

    model_config = _examples(CONTEXT_EXAMPLE)

    chat: str
    query: str | None = Field(description="what recall searched for; null: nothing to search for")
    query_source: Literal["given", "latest_inbound"] | None
    max_tokens: int
    window: int
    tokens: int = Field(description="tokens of messages, as the chat completions API counts them")
    tokenizer: str
    recall_included: bool
    recall_count: int
    window_count: int
    trimmed: Trimmed
    semantic: SemanticUse
    messages: list[ContextMessage]


class RecallAnswer(BaseModel):
    """``GET /chats/{chat}/recall``: the best snippets first, and whether they were ranked by meaning."""

    chat: str
    k: int
    min_similarity: float
    by_meaning: bool
    semantic: SemanticUse
    snippets: list[Snippet]
