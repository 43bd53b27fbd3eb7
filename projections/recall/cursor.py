"""Opaque pagination cursors: a position in a keyset order (a time and a tie-breaking key),
URL-safe base64 of ``<iso time>|<key>``.

Opaque so that clients pass them back rather than build them (the order may change); not
signed, since a forged cursor only positions a page the caller may read anyway. A cursor
that does not decode is ``InvalidCursor``, whose reason names the field, never the value.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime


class InvalidCursor(ValueError):
    def __init__(self, field: str) -> None:
        super().__init__(f"{field}: invalid_cursor")
        self.reason = f"{field}: invalid_cursor"


def encode(at: datetime, key: str) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{key}".encode()).decode().rstrip("=")


def decode(cursor: str, field: str) -> tuple[datetime, str]:
    """The position ``cursor`` stands for; ``field`` names the parameter in the error."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, key = text.split("|", 1)
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None or not key or "\x00" in key:
            raise ValueError(field)
        return moment.astimezone(UTC), key
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise InvalidCursor(field) from None
