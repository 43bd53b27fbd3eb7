"""The messages projection on every webhook kind: nothing crashes, unmodelled non-message events
write no row, a deletion whose chat the provider did not name updates its message and no chat."""

from __future__ import annotations

import pytest

from contracts.messages import ProviderEventUnsupported
from projections.messages.logic import fold
from streams.normalize.logic import normalise
from tests.unit.normalize.test_kinds import ALL, kind_bytes
from tests.unit.normalize.webhooks import delivery
from tests.unit.projections.factory import items


@pytest.mark.parametrize(("provider", "kind"), ALL)
def test_every_kind_folds(provider: str, kind: str) -> None:
    events = normalise(delivery(provider, body=kind_bytes(provider, kind)))
    ops = fold(items(events))
    if all(isinstance(e, ProviderEventUnsupported) for e in events):
        assert (ops.chats, ops.messages, ops.updates) == ({}, {}, {})
    assert all(chat.chat_id for chat in ops.chats.values())  # no chat without an id


def test_a_chatless_deletion_updates_its_message_and_makes_no_chat() -> None:
    [deleted] = normalise(delivery("whapi", body=kind_bytes("whapi", "messages.delete")))
    ops = fold(items([deleted]))
    assert ops.chats == {} and ops.messages == {}
    update = ops.updates[deleted.target_message_id]  # type: ignore[union-attr]
    assert update.deleted_at == deleted.occurred_at


def test_history_messages_are_unsupported_rows_and_chat_activity() -> None:
    events = normalise(delivery("meta", body=kind_bytes("meta", "history")))
    ops = fold(items(events))
    assert sorted(r.provider_message_id for r in ops.messages.values()) == ["wamid.KIND-M-H1", "wamid.KIND-M-H2"]
    assert {r.message_type for r in ops.messages.values()} == {"unsupported"}
    [chat] = ops.chats.values()
    assert chat.last_inbound_at is not None and chat.last_outbound_at is not None
