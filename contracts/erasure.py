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
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson

from pydantic import AwareDatetime, Field

from contracts.deadletter import DeadLettered
from contracts.envelope import EventCodec, Frozen, to_bytes
from contracts.ids import chat_key_parts, phone_digits

TOPIC = "wa.erasures"
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


@dataclass(frozen=True)
class Ledger:
    """The erasures applied so far, as the readers consult them: per subject hash (and per hash
    of each chat an erasure removed, for chats whose key is no phone), the latest request time.
    What was received before that time is hidden; what arrives later is a new history."""

    erased: Mapping[str, datetime] = field(default_factory=dict)

    @classmethod
    def of(cls, entries: Iterable[tuple[str, Iterable[str], datetime]]) -> "Ledger":
        erased: dict[str, datetime] = {}
        for subject, chats, at in entries:
            for name in (subject, *chats):
                if name not in erased or erased[name] < at:
                    erased[name] = at
        return cls(erased)

    def erased_at(self, chat_key: str) -> datetime | None:
        """When ``chat_key`` was last erased (directly or through its phone), or None."""
        if not self.erased or chat_key.count(":") < 2:
            return None
        times = [self.erased[s] for s in chat_subjects(chat_key) if s in self.erased]
        return max(times) if times else None

    def hides(self, chat_key: str | None, at: datetime | None) -> bool:
        """Whether something about ``chat_key`` received at ``at`` was erased (no time: yes)."""
        erased = self.erased_at(chat_key) if chat_key else None
        return erased is not None and (at is None or at < erased)

    def hides_record(self, key: bytes | None, value: bytes | None) -> bool:
        """For a record keyed by chat whose value carries ``received_at`` (every event of
        wa.messages, wa.media, the enrichment topics and wa.embeddings); parses only when the
        chat was erased."""
        chat = key.decode("utf-8", "replace") if key else None
        if not chat or self.erased_at(chat) is None:
            return False
        return self.hides(chat, _received_at(value))

    def hides_event(self, event: object) -> bool:
        """For a decoded event: an envelope's chat and ``received_at``; a dead letter's input
        key and ``failed_at``; anything else (markers, ledger events) is never hidden."""
        if isinstance(event, DeadLettered):
            key = event.key
            return self.hides(key.decode("utf-8", "replace") if key else None, event.failed_at)
        chat, at = getattr(event, "chat_key", None), getattr(event, "received_at", None)
        return isinstance(chat, str) and self.hides(chat, at if isinstance(at, datetime) else None)


def _received_at(value: bytes | None) -> datetime | None:
    try:
        payload: Any = orjson.loads(value or b"")
        return datetime.fromisoformat(payload["received_at"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
