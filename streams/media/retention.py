"""The retention sweep's pure rules: the cut-off each policy sets, and the events for the chats
that have something past it. No I/O.

A policy of ``None`` or 0 days keeps forever (no cut-off). A message's age is counted from
when Message Memory received it (``received_at``), the time every event about the message
carries, so the projectors and the rebuild can apply the same cut-off to events logged later
(``contracts.retention``). The cut-off is the sweep's time minus the days, to the second, so
a sweep repeated within the same second writes the same event ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from contracts.retention import MessagesExpired, Policy, TextsCleared, new_event


def cutoff(days: int | None, now: datetime) -> datetime | None:
    """What was received before this is past a policy of ``days``; None: kept forever."""
    if not days:
        return None
    return now.astimezone(UTC).replace(microsecond=0) - timedelta(days=days)


@dataclass(frozen=True)
class ChatPast:
    """One chat with ``messages`` past a policy's cut-off, the oldest received at ``oldest``."""

    chat_key: str
    messages: int
    oldest: datetime


def events(policy: Policy, chats: Iterable[ChatPast], *, before: datetime, now: datetime,
           days: int) -> list[MessagesExpired | TextsCleared]:  # fmt: skip
    """One event per chat with something past the cut-off, in chat order."""
    return [new_event(policy, c.chat_key, before=before, swept_at=now, days=days, messages=c.messages)
            for c in sorted(chats, key=lambda c: c.chat_key) if c.messages > 0]  # fmt: skip


def goes_at(oldest: datetime | None, days: int | None) -> datetime | None:
    """When the oldest thing a policy covers passes its cut-off (in the past: the next sweep)."""
    if oldest is None or not days:
        return None
    return oldest + timedelta(days=days)
