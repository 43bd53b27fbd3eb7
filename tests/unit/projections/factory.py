"""Build wa.messages events for one chat by hand, for the projector's unit and integration tests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts import ids
from contracts.messages import (
    ConsentChanged, MessageDeleted, MessageEdited, MessageEvent, MessageReceived, MessageSent, MessageUnsupported,
    ReactionAdded, ReactionRemoved, StatusError, StatusUpdated, encode_event,
)  # fmt: skip
from projections.items import Item

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TOPIC = "wa.messages"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@dataclass
class Chat:
    channel: str = "CH"
    chat_id: str = "15550001234"
    provider: str = "whapi"
    contact_name: str | None = "Dana Silva"
    is_group: bool = False
    group_name: str | None = None

    @property
    def key(self) -> str:
        return ids.chat_key(self.provider, self.channel, self.chat_id)

    def mid(self, pmid: str) -> str:
        return ids.message_id(self.provider, self.channel, pmid)

    def _base(self, kind: str, pmid: str, t: float, *qualifiers: str, named: bool = True) -> dict[str, Any]:
        return {
            "event_id": ids.event_id(self.provider, self.channel, pmid, kind, *qualifiers),
            "chat_key": self.key, "occurred_at": at(t), "received_at": at(t + 1), "provider": self.provider,
            "channel_id": self.channel, "delivery_id": f"dlv-{pmid}-{kind}", "chat_id": self.chat_id,
            "is_group": self.is_group, "group_name": self.group_name,
            "contact_phone": None if self.is_group else self.chat_id,
            "contact_name": self.contact_name if named else None,
        }  # fmt: skip

    def received(self, pmid: str, text: str | None = "hello", t: float = 0, **kw: Any) -> MessageReceived:
        fields = {"message_type": "text", "sender_id": self.chat_id, "sender_name": self.contact_name} | kw
        return MessageReceived(**self._base("message_received", pmid, t), provider_message_id=pmid,
                               message_id=self.mid(pmid), text=text, **fields)  # fmt: skip

    def sent(self, pmid: str, text: str | None = "reply", t: float = 0, **kw: Any) -> MessageSent:
        fields = {"message_type": "text", "sender_id": self.channel} | kw
        return MessageSent(**self._base("message_sent", pmid, t, named=False), provider_message_id=pmid,
                           message_id=self.mid(pmid), text=text, **fields)  # fmt: skip

    def _targeted(self, pmid: str, direction: str = "outbound") -> dict[str, Any]:
        return {"target_provider_message_id": pmid, "target_message_id": self.mid(pmid), "direction": direction}

    def status(self, pmid: str, status: str, t: float, errors: Iterable[StatusError] = ()) -> StatusUpdated:
        return StatusUpdated(**self._base("status_updated", pmid, t, status, named=False), **self._targeted(pmid),
                             status=status, errors=tuple(errors))  # fmt: skip

    def edited(self, pmid: str, new_text: str | None, t: float, direction: str = "inbound") -> MessageEdited:
        return MessageEdited(**self._base("message_edited", pmid, t, new_text or ""), **self._targeted(pmid, direction),
                             new_text=new_text)  # fmt: skip

    def deleted(self, pmid: str, t: float, direction: str = "inbound") -> MessageDeleted:
        return MessageDeleted(**self._base("message_deleted", pmid, t), **self._targeted(pmid, direction))

    def reaction(self, pmid: str, emoji: str | None, t: float, reactor: str | None = None,
                 direction: str = "inbound") -> ReactionAdded | ReactionRemoved:  # fmt: skip
        who = reactor if reactor is not None else self.chat_id
        fields = {**self._targeted(pmid, direction), "reactor_id": who, "reactor_name": self.contact_name}
        if emoji:
            return ReactionAdded(**self._base("reaction_added", f"{pmid}-r{t}", t, who, emoji), **fields, emoji=emoji)
        return ReactionRemoved(**self._base("reaction_removed", f"{pmid}-r{t}", t, who), **fields)

    def consent(self, pmid: str, state: str, t: float, keyword: str = "STOP") -> ConsentChanged:
        return ConsentChanged(**self._base("consent_changed", pmid, t, state), state=state, keyword=keyword,
                              provider_message_id=pmid, message_id=self.mid(pmid))  # fmt: skip

    def unsupported(self, pmid: str | None, t: float, provider_type: str = "poll") -> MessageUnsupported:
        return MessageUnsupported(**self._base("message_unsupported", pmid or f"key-{t}", t, provider_type),
                                  provider_message_id=pmid, message_id=self.mid(pmid) if pmid else None,
                                  provider_type=provider_type, raw={"type": provider_type})  # fmt: skip


def items(events: Iterable[MessageEvent], *, partition: int = 0, first_offset: int = 0) -> list[Item[MessageEvent]]:
    return [
        Item(e, TOPIC, partition, first_offset + n, e.chat_key.encode(), encode_event(e))
        for n, e in enumerate(events)
    ]
