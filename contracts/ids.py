"""Deterministic identifiers and the small value parsers every normaliser shares.

Ids are derived, never generated: the same provider message seen twice (a redelivery, a
replay of ``wa.raw``, the business's own send recorded through ingest *and* echoed by the
provider) yields the same ids, so projections absorb the duplicate with an upsert.

Id scheme (stable forever: changing it re-keys every row ever projected):
- ``chat_key`` is readable, ``provider:channel:chat_id``; it is the Kafka key of wa.messages.
- ``message_id`` and ``event_id`` are UUIDv5 strings in ``ID_NAMESPACE`` over the parts
  joined by U+001F (unit separator, which no provider id contains). Fixed length, opaque,
  and free of the ``:``/``=``/``/`` that provider ids carry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from datetime import UTC, datetime
from typing import NamedTuple

# Never change: every message_id and event_id is derived from it.
ID_NAMESPACE = uuid.UUID("6f1c9f1e-3a55-5b8e-9d0c-4d6d656d6d73")
_SEP = "\x1f"

# Anything larger is milliseconds: 10**11 seconds is the year 5138, 10**11 ms is 1973.
_MS_THRESHOLD = 10**11

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_DIGITS = re.compile(r"\d+")


_NAMESPACE_BYTES = ID_NAMESPACE.bytes


def _uuid(*parts: str) -> str:
    """``str(uuid.uuid5(ID_NAMESPACE, name))``, computed directly: normalize derives two ids per
    event, and the ``uuid.UUID`` object round trip was a tenth of its per-event CPU."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + _SEP.join(parts).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def chat_key(provider: str, channel: str, chat_id: str) -> str:
    return f"{provider}:{channel}:{chat_id}"


def chat_key_parts(key: str) -> tuple[str, str, str]:
    """``chat_key`` undone: (provider, channel, chat id), for events made from a row that keeps
    only the key. A chat id may hold ':' (kept whole); provider names and channels do not."""
    provider, _, rest = key.partition(":")
    channel, _, chat_id = rest.partition(":")
    return provider, channel, chat_id


def message_id(provider: str, channel: str, provider_message_id: str) -> str:
    """The row id of one message (``chat_messages.id``); statuses, edits and reactions find it by this."""
    return _uuid("message", provider, channel, provider_message_id)


def event_id(provider: str, channel: str, provider_message_id: str, event_type: str, *qualifiers: str) -> str:
    """The idempotency key of one event.

    ``provider_message_id`` is the id the event is about (the message itself, or the
    target of a status / deletion); ``qualifiers`` separate events that legitimately
    share it: the status value, the reactor and emoji of a reaction, a consent state.
    """
    return _uuid("event", provider, channel, provider_message_id, event_type, *qualifiers)


class Jid(NamedTuple):
    chat_id: str
    phone: str | None
    is_group: bool
    is_lid: bool


def normalise_jid(raw: str) -> Jid:
    """Normalise a WhatsApp address into one chat id per person or group.

    Phone addresses (``@s.whatsapp.net``, ``@c.us``, bare or ``+`` digits, with or
    without a ``:device`` suffix) become bare E.164 digits, so every provider names a
    contact the same way. Groups keep ``@g.us``; ``@lid`` ids (which hide the phone
    number) keep their suffix and have no phone; other addresses (broadcast,
    newsletter) are kept as given.
    """
    value = raw.strip()
    if not value:
        raise ValueError("empty WhatsApp address")
    user, _, server = value.partition("@")
    user = user.split(":", 1)[0]  # device suffix: 15550001234:12@s.whatsapp.net
    server = server.lower()
    if server == "g.us":
        return Jid(f"{user}@g.us", None, True, False)
    if server == "lid":
        return Jid(f"{user}@lid", None, False, True)
    if server in ("", "s.whatsapp.net", "c.us"):
        digits = user.removeprefix("+")
        if _DIGITS.fullmatch(digits):
            return Jid(digits, digits, False, False)
    return Jid(value, None, False, False)


def phone_digits(value: str | None) -> str | None:
    """Digits of a phone number as people write it (``+1 555-000-7777`` -> ``15550007777``)."""
    if not value:
        return None
    digits = "".join(ch for ch in value if ch.isdigit())
    return digits or None


def to_utc(value: int | float | str | datetime) -> datetime:
    """A provider timestamp as a tz-aware UTC datetime.

    Accepts epoch seconds or milliseconds as numbers or numeric strings (values above
    10**11 are taken as milliseconds), ISO 8601 strings, and aware datetimes.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: cannot tell its zone")
        return value.astimezone(UTC)
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            number: float = float(text)
        except ValueError:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return to_utc(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    elif isinstance(value, int | float):
        number = value
    else:
        raise ValueError(f"not a timestamp: {value!r}")
    if number > _MS_THRESHOLD:
        number /= 1000
    return datetime.fromtimestamp(number, UTC)


def sha256_hex(value: str | None) -> str | None:
    """A SHA-256 as lower-case hex, whether the provider sent hex or (standard or url-safe) base64."""
    if not value:
        return None
    text = value.strip()
    if _HEX64.fullmatch(text):
        return text.lower()
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None
