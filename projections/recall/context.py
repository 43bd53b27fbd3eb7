"""An agent's context for one chat, assembled without I/O: what each message says to an agent,
and which recall snippets and recent messages fit a token budget.

``agent_text`` renders a message as the text an agent should read: the body; a voice note's
or audio's transcript, an image's caption and AI description, a document's extracted text,
each marked as such (``[voice note transcript] ...``), since the agent cannot tell a
transcript from typed words otherwise; a deleted message as ``[deleted message]``.

``assemble`` puts recall snippets (oldest first, as ``system`` messages saying when and who)
before the window of recent messages (oldest first, ``user`` for the contact, ``assistant``
for the business) and counts tokens as OpenAI counts chat messages (3 per message, its role
and content, 3 priming the reply). Over ``max_tokens``, snippets go first, lowest score
first (they are the less certain part), then the oldest window messages; the newest
message is cut rather than dropped, so an answer always holds what the contact said last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from projections.recall.models import ContextMessage, ContextMeta, Role, Trimmed
from projections.recall.search import Snippet
from runtime.tokenizer import Tokenizer

TOKENS_PER_MESSAGE = 3  # <|start|>{role}\n{content}<|end|>\n, as OpenAI's cookbook counts chat messages
REPLY_PRIMING = 3  # every reply is primed with <|start|>assistant<|message|>
CUT = " … [cut]"

_MEDIA_LABEL = {"voice": "voice note", "audio": "audio"}
_SOURCE_LABEL = {"text": "message", "transcript": "transcript", "caption": "image caption", "document": "document text"}


@dataclass(frozen=True)
class WindowMessage:
    """One recent message as the context needs it (a row of chat_messages and its media)."""

    message_id: str
    occurred_at: datetime
    origin: str
    direction: str
    message_type: str
    sender_id: str | None = None
    sender_name: str | None = None
    body: str | None = None
    caption: str | None = None
    caption_generated: bool = False
    transcript: str | None = None
    extracted_text: str | None = None
    description: str | None = None  # the AI description of an image (chat_media.caption)
    filename: str | None = None
    edited: bool = False
    deleted: bool = False


def role_of(origin: str, direction: str) -> Role:
    """The contact is the user and the business the assistant; a system message goes by its direction."""
    if origin in ("user", "agent"):
        return "user" if origin == "user" else "assistant"
    return "user" if direction == "inbound" else "assistant"


def agent_text(m: WindowMessage) -> str:
    """The text an agent should see for ``m``; never empty."""
    if m.deleted:
        return "[deleted message]"
    caption = None if m.caption_generated else m.caption
    description = m.description or (m.caption if m.caption_generated else None)
    kind = m.message_type
    parts: list[str] = []
    if kind in _MEDIA_LABEL:
        label = _MEDIA_LABEL[kind]
        parts.append(f"[{label} transcript] {m.transcript}" if m.transcript else f"[{label}, not transcribed]")
        parts += [caption] if caption else []
    elif kind == "image":
        parts.append(f"[image] {caption}" if caption else "[image]")
        parts += [f"[image description] {description}"] if description else []
    elif kind == "document":
        parts.append(" ".join(x for x in ("[document]", m.filename, caption) if x))
        parts += [f"[document text] {m.extracted_text}"] if m.extracted_text else []
    elif kind in ("text", "link_preview", "interactive"):  # typed words
        parts.append(m.body or "")
    else:  # video, sticker, location, contact, unsupported...
        parts.append(" ".join(x for x in (f"[{kind}]", caption or m.body) if x))
        parts += [f"[{kind} transcript] {m.transcript}"] if m.transcript else []
    return "\n".join(p for p in parts if p) or f"[{kind}]"


def snippet_text(s: Snippet) -> str:
    """A recalled snippet, headed with when, who and what it is (it comes from out of the window)."""
    when = s.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if s.occurred_at else "time unknown"
    who = s.sender_name or s.sender_id or "unknown sender"
    return f"[recalled from earlier in this chat: {when}, {who}, {_SOURCE_LABEL.get(s.source, s.source)}] {s.text}"


@dataclass(frozen=True)
class Assembled:
    messages: list[ContextMessage]
    tokens: int
    recall_count: int
    window_count: int
    trimmed: Trimmed


@dataclass(frozen=True)
class _Part:
    message: ContextMessage
    score: float  # recall: lower goes first; window: unused
    order: int


def _counted(tokenizer: Tokenizer, role: Role, content: str, meta: ContextMeta) -> ContextMessage:
    tokens = TOKENS_PER_MESSAGE + len(tokenizer.encode(role)) + len(tokenizer.encode(content))
    return ContextMessage(role=role, content=content, metadata=meta.model_copy(update={"tokens": tokens}))


def assemble(
    window: Sequence[WindowMessage], snippets: Sequence[Snippet], tokenizer: Tokenizer, max_tokens: int, *,
    is_group: bool = False,
) -> Assembled:  # fmt: skip
    """The context: ``snippets`` (best first, none of a window message) then ``window`` (oldest
    first), trimmed to ``max_tokens``."""
    recalled = [
        _Part(_counted(tokenizer, "system", snippet_text(s), ContextMeta(
            kind="recall", message_id=s.message_id, occurred_at=s.occurred_at, sender_id=s.sender_id,
            sender_name=s.sender_name, direction=s.direction, type=s.message_type, source=s.source, score=s.score,
            edited=False, deleted=False, truncated=False, tokens=0)), s.score, n)
        for n, s in enumerate(snippets)
    ]  # fmt: skip
    recent = [_window_part(tokenizer, m, is_group, n) for n, m in enumerate(window)]
    budget = max_tokens - REPLY_PRIMING
    used = sum(p.message.metadata.tokens for p in [*recalled, *recent])
    dropped_recall = dropped_window = 0
    for part in sorted(recalled, key=lambda p: (p.score, -p.order)):
        if used <= budget:
            break
        recalled.remove(part)
        used -= part.message.metadata.tokens
        dropped_recall += 1
    while used > budget and len(recent) > 1:
        used -= recent.pop(0).message.metadata.tokens
        dropped_window += 1
    truncated = False
    if used > budget and recent:
        last = recent.pop()
        used -= last.message.metadata.tokens
        cut = _cut(tokenizer, last.message, budget - used)
        if cut is None:
            dropped_window += 1
        else:
            recent.append(replace(last, message=cut))
            used += cut.metadata.tokens
            truncated = True
    recalled.sort(key=lambda p: (p.message.metadata.occurred_at or datetime.min.replace(tzinfo=UTC), p.order))
    messages = [p.message for p in [*recalled, *recent]]
    trimmed = Trimmed(any=bool(dropped_recall or dropped_window or truncated), recall=dropped_recall,
                      window=dropped_window, truncated=truncated)  # fmt: skip
    return Assembled(messages, used + REPLY_PRIMING if messages else 0, len(recalled), len(recent), trimmed)


def _window_part(tokenizer: Tokenizer, m: WindowMessage, is_group: bool, order: int) -> _Part:
    role = role_of(m.origin, m.direction)
    content = agent_text(m)
    if is_group and role == "user" and (m.sender_name or m.sender_id):
        content = f"{m.sender_name or m.sender_id}: {content}"
    meta = ContextMeta(kind="window", message_id=m.message_id, occurred_at=m.occurred_at, sender_id=m.sender_id,
                       sender_name=m.sender_name, direction=m.direction, type=m.message_type, source=None, score=None,
                       edited=m.edited, deleted=m.deleted, truncated=False, tokens=0)  # fmt: skip
    return _Part(_counted(tokenizer, role, content, meta), 0.0, order)


def _cut(tokenizer: Tokenizer, message: ContextMessage, available: int) -> ContextMessage | None:
    """``message`` with its content cut to ``available`` tokens in all, or None when not even its head fits."""
    room = available - TOKENS_PER_MESSAGE - len(tokenizer.encode(message.role)) - len(tokenizer.encode(CUT))
    if room <= 0:
        return None
    content = tokenizer.decode(tokenizer.encode(message.content)[:room]) + CUT
    meta = message.metadata.model_copy(update={"truncated": True})
    counted = _counted(tokenizer, message.role, content, meta)
    # Re-encoding the cut text may merge tokens differently: shave until it fits.
    while counted.metadata.tokens > available and room > 1:
        room -= 1
        content = tokenizer.decode(tokenizer.encode(message.content)[:room]) + CUT
        counted = _counted(tokenizer, message.role, content, meta)
    return counted if counted.metadata.tokens <= available else None
