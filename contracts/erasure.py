"""wa.erasures: the erasure ledger. An ``ErasureRequested`` asks every projection to forget a
contact (one chat, or every chat of a phone number) and to keep forgetting what was logged
about it before the request.

The subject is never on the topic in plain text: it is a SHA-256 over a fixed domain tag,
the subject's kind and its normalised value (``subject_hash``). Not a keyed HMAC: the ledger
must still match after a rebuild from offset 0 years later, and no key can be lost or rotated
under it. The price: a hash of a phone number can be found by trying every number, so the
ledger is pseudonymous, not anonymous (README, "Privacy and retention").

Keyed by the subject hash and compacted: a second erasure of the same subject replaces the
first, and it covers everything the first did (it is later).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import orjson

from pydantic import AwareDatetime, Field

from contracts.deadletter import DeadLettered
from contracts.envelope import EventCodec, Frozen, to_bytes
from contracts.ids import chat_key_parts, phone_digits

TOPIC = "wa.erasures"
E = TypeVar("E")
SCHEMA_VERSION = 1
#: Never change: every subject hash on the ledger is made with it.
_DOMAIN = "msgmem-erasure-v1"

SubjectKind = Literal["chat", "phone"]


class SubjectError(ValueError):
    """A subject that names nothing (no digits in a phone number, an empty chat key)."""


def normalised(kind: SubjectKind, value: str) -> str:
    """A chat key as stored (stripped); a phone number as its digits (``+1 555-000`` -> ``1555000``)."""
    if kind == "phone":
        digits = phone_digits(value)
        if not digits:
            raise SubjectError("phone: no digits")
        return digits
    key = value.strip()
    if key.count(":") < 2:
        raise SubjectError("chat: not a chat key (provider:channel:chat id)")
    return key


def subject_hash(kind: SubjectKind, value: str) -> str:
    """The ledger's name for a subject: hex SHA-256 of domain, kind and normalised value."""
    return hashlib.sha256(f"{_DOMAIN}\x1f{kind}\x1f{normalised(kind, value)}".encode()).hexdigest()


def chat_subjects(chat_key: str, contact_phone: str | None = None) -> frozenset[str]:
    """Every subject hash an erasure of this chat may name: the chat itself, its contact's
    phone, and the phone its chat id is (``15550001234`` or ``15550001234@s.whatsapp.net``;
    group ids and ``@lid`` ids are no phone)."""
    subjects = {subject_hash("chat", chat_key)}
    _, _, chat_id = chat_key_parts(chat_key)
    local, _, domain = chat_id.partition("@")
    phones = [contact_phone]
    if local.lstrip("+").isdigit() and domain in ("", "s.whatsapp.net", "c.us"):
        phones.append(local)
    for phone in phones:
        if phone and phone_digits(phone):
            subjects.add(subject_hash("phone", phone))
    return frozenset(subjects)


class ErasureRequested(Frozen):
    """Forget ``subject_hash``: rows, media files and results cached only for its files.
    ``requested_at`` separates its past (forgotten, also when replayed) from a new history."""

    type: Literal["erasure_requested"] = "erasure_requested"
    schema_version: int = SCHEMA_VERSION
    erasure_id: str
    subject_kind: SubjectKind
    subject_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    requested_at: AwareDatetime
    requested_by: Annotated[str, Field(max_length=100)]
    #: Why, for the operator's records: must hold no personal data (the receipt leaves it out).
    reason: Annotated[str | None, Field(max_length=500)] = None

    def encode(self) -> bytes:
        return to_bytes(self)

    @property
    def key(self) -> bytes:
        return self.subject_hash.encode()


AnyErasureEvent = ErasureRequested
CODEC: EventCodec[ErasureRequested] = EventCodec(ErasureRequested, (ErasureRequested,), {})


def decode(data: bytes) -> ErasureRequested:
    """Raises ``EventDecodeError`` (a ``ValueError``) on bytes that are no erasure event."""
    return CODEC.decode(data)


#: Event types whose text is derived from media, and the fields holding that text: what a
#: ``TextsCleared`` cut-off strips (``Ledger.screen``). Names, not classes: contracts.enrichment
#: imports nothing of this module, and this one stays free of the enrichment models.
DERIVED_TEXT_FIELDS: Mapping[str, Mapping[str, Any]] = {
    "audio_transcribed": {"text": None},
    "image_captioned": {"caption": None},
    "document_extracted": {"text": None, "pages": ()},
}
#: Embedding sources made of derived text (contracts.embeddings.SOURCES but ``text``).
DERIVED_SOURCES = frozenset({"caption", "transcript", "document"})


@lru_cache(maxsize=65536)
def chat_hash(chat_key: str) -> str:
    """``subject_hash('chat', chat_key)``, remembered: readers ask it for every event of a chat."""
    return subject_hash("chat", chat_key)


@dataclass(frozen=True)
class Ledger:
    """The erasures applied so far, as the readers consult them: per subject hash (and per hash
    of each chat an erasure removed, for chats whose key is no phone), the latest request time.
    What was received before that time is hidden; what arrives later is a new history.

    Beside them, the retention cut-offs (``contracts.retention``, per chat hash): ``expired``,
    what was received before it is hidden as if erased; ``cleared``, the text derived from the
    media of a message received before it is stripped (``screen``)."""

    erased: Mapping[str, datetime] = field(default_factory=dict)
    expired: Mapping[str, datetime] = field(default_factory=dict)
    cleared: Mapping[str, datetime] = field(default_factory=dict)

    @classmethod
    def of(cls, entries: Iterable[tuple[str, Iterable[str], datetime]],
           cutoffs: Iterable[tuple[str, datetime | None, datetime | None]] = ()) -> "Ledger":  # fmt: skip
        erased: dict[str, datetime] = {}
        for subject, chats, at in entries:
            for name in (subject, *chats):
                if name not in erased or erased[name] < at:
                    erased[name] = at
        expired: dict[str, datetime] = {}
        cleared: dict[str, datetime] = {}
        for chat, messages_before, texts_before in cutoffs:
            if messages_before is not None:
                expired[chat] = messages_before
            if texts_before is not None:
                cleared[chat] = texts_before
        return cls(erased, expired, cleared)

    @property
    def active(self) -> bool:
        """Whether anything is hidden or stripped at all (readers skip the checks when not)."""
        return bool(self.erased or self.expired or self.cleared)

    def erased_at(self, chat_key: str) -> datetime | None:
        """When ``chat_key`` was last erased (directly or through its phone), or None."""
        if not self.erased or chat_key.count(":") < 2:
            return None
        times = [self.erased[s] for s in chat_subjects(chat_key) if s in self.erased]
        return max(times) if times else None

    def hidden_before(self, chat_key: str) -> datetime | None:
        """What about ``chat_key`` received before this is hidden: its erasure or its
        MESSAGE_RETENTION_DAYS cut-off, the later of the two; None: nothing is."""
        erased = self.erased_at(chat_key)
        expired = self.expired.get(chat_hash(chat_key)) if self.expired and chat_key.count(":") >= 2 else None
        if erased is None or expired is None:
            return erased if expired is None else expired
        return max(erased, expired)

    def hides(self, chat_key: str | None, at: datetime | None, *, expiry: bool = True) -> bool:
        """Whether something about ``chat_key`` received at ``at`` was erased or (``expiry``)
        expired (no time: if erased, yes; a retention cut-off alone hides only what it can date)."""
        if not chat_key:
            return False
        before = self.hidden_before(chat_key) if expiry else self.erased_at(chat_key)
        if before is None:
            return False
        if at is None:
            return self.erased_at(chat_key) is not None
        return at < before

    def hides_record(self, key: bytes | None, value: bytes | None) -> bool:
        """For a record keyed by chat whose value carries ``received_at`` (every event of
        wa.messages, wa.media, the enrichment topics and wa.embeddings); parses only when the
        chat was erased or has a retention cut-off."""
        chat = key.decode("utf-8", "replace") if key else None
        if not chat or self.hidden_before(chat) is None:
            return False
        return self.hides(chat, _received_at(value))

    def hides_event(self, event: object) -> bool:
        """For a decoded event: an envelope's chat and ``received_at``; a dead letter's input
        key and ``failed_at``; anything else (markers, ledger events) is never hidden.

        A ``MediaExpired`` is dated by the earlier of its ``received_at`` (the message's, from
        sweeps that know it; the sweep's own time in older events) and the ``stored_at`` of the
        copy it ends, which never precedes its message: so the expiry of an expired message's
        file does not bring its row back."""
        return self._hides_event(event, expiry=True)

    def erases_event(self, event: object) -> bool:
        """``hides_event`` by the erasures alone, retention cut-offs aside."""
        return self._hides_event(event, expiry=False)

    def _hides_event(self, event: object, *, expiry: bool) -> bool:
        if isinstance(event, DeadLettered):
            key = event.key
            return self.hides(key.decode("utf-8", "replace") if key else None, event.failed_at, expiry=expiry)
        chat, at = getattr(event, "chat_key", None), getattr(event, "received_at", None)
        if getattr(event, "type", None) == "media_expired" and isinstance(at, datetime):
            stored = getattr(event, "stored_at", None)
            at = min(at, stored) if isinstance(stored, datetime) else at
        return isinstance(chat, str) and self.hides(chat, at if isinstance(at, datetime) else None, expiry=expiry)

    def screen(self, event: E) -> E | None:
        """What a projection applies of ``event``: None when it is hidden (``hides_event``);
        when its message's derived text was cleared (TRANSCRIPT_RETENTION_DAYS), a result with
        its text stripped (an enrichment result: the row keeps the model and time, so a replay
        or a re-run of the stage changes nothing visible) or None (the chunks of that text);
        else the event itself."""
        if self.hides_event(event):
            return None
        if not self.cleared:
            return event
        kind = getattr(event, "type", None)
        stripped = DERIVED_TEXT_FIELDS.get(kind) if isinstance(kind, str) else None
        derived = stripped is not None or (kind == "chunks_replaced" and getattr(event, "source", None) in DERIVED_SOURCES)
        if not derived:
            return event
        chat, at = getattr(event, "chat_key", None), getattr(event, "received_at", None)
        before = self.cleared.get(chat_hash(chat)) if isinstance(chat, str) else None
        if before is None or not isinstance(at, datetime) or at >= before:
            return event
        if stripped is None:
            return None
        return event.model_copy(update=dict(stripped))  # type: ignore[attr-defined]


def _received_at(value: bytes | None) -> datetime | None:
    try:
        payload: Any = orjson.loads(value or b"")
        return datetime.fromisoformat(payload["received_at"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
