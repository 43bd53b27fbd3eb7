"""`msgmem compliance`: the outbound messages the messages projector flagged in a period.

A flag (``chat_messages.compliance_flag``, migration 0014) says an outbound message was sent while
the chat was opted out (``opted_out``), or, in a 1:1 chat, more than 24 hours after the contact's
last message and without a template (``outside_window``): WhatsApp's customer service window.
The projector judges each outbound message by the chat's events at its send time, so the list
is the same after a rebuild. Read-only: it reads the projected table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import asyncpg

from contracts.settings import Settings

_FLAGGED = """
select m.provider_timestamp as sent_at, m.compliance_flag as reason, m.chat_key, m.id as message_id,
       m.provider, m.origin, m.sender_name, m.template, c.consent_state, c.service_window_closes_at
from chat_messages m join chats c on c.chat_key = m.chat_key
where m.compliance_flag is not null and m.provider_timestamp >= $1 and m.provider_timestamp < $2
order by m.provider_timestamp, m.id
"""


@dataclass(frozen=True)
class Flagged:
    sent_at: datetime
    reason: str
    chat_key: str
    message_id: str
    provider: str
    origin: str
    sender_name: str | None
    template: str | None
    consent_state: str
    service_window_closes_at: datetime | None

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        for name in ("sent_at", "service_window_closes_at"):
            out[name] = out[name].isoformat() if out[name] else None
        return out


async def flagged(settings: Settings, since: datetime, until: datetime) -> list[Flagged]:
    conn = await asyncpg.connect(settings.database_url, statement_cache_size=settings.statement_cache_size)
    try:
        return [Flagged(**dict(r)) for r in await conn.fetch(_FLAGGED, since, until)]
    finally:
        await conn.close()


def render(rows: list[Flagged], since: datetime, until: datetime) -> str:
    head = f"outbound messages flagged from {since.isoformat()} to {until.isoformat()}: {len(rows)}"
    counts = {}
    for row in rows:
        counts[row.reason] = counts.get(row.reason, 0) + 1
    lines = [head + (f" ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})" if counts else "")]
    for row in rows:
        by = f" by {row.sender_name}" if row.sender_name else ""
        lines.append(f"{row.sent_at.isoformat()}  {row.reason:<14}  {row.chat_key}  {row.message_id}  {row.origin}{by}")
    return "\n".join(lines)
