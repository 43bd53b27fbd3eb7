"""The messages projection's pure fold: events -> one row operation per chat / message / target."""

from __future__ import annotations

import itertools

import orjson
import pytest

from contracts.messages import StatusError
from projections.messages.logic import fold
from projections.messages.rows import STATUS_ORDER, MessageUpdate, Reaction, status_rank
from streams.normalize.logic import normalise
from tests.unit.normalize.webhooks import all_cases, delivery
from tests.unit.projections.factory import Chat, at, items

DANA = Chat()


def test_a_received_message_becomes_a_row_and_chat_activity() -> None:
    event = DANA.received("m1", "Hi there", t=10, forwarded=True, reply_to_provider_message_id="m0")
    [item] = items([event], partition=3, first_offset=41)
    ops = fold([item])

    row = ops.messages[DANA.mid("m1")]
    assert (row.chat_key, row.direction, row.origin, row.message_type) == (DANA.key, "inbound", "user", "text")
    assert (row.body, row.forwarded, row.reply_to_provider_message_id) == ("Hi there", True, "m0")
    assert (row.provider_timestamp, row.received_at) == (at(10), at(11))
    assert (row.source_topic, row.source_partition, row.source_offset) == ("wa.messages", 3, 41)
    assert orjson.loads(row.raw_event or "")["event_id"] == event.event_id
    chat = ops.chats[DANA.key]
    assert (chat.contact_phone, chat.contact_name, chat.is_group) == ("15550001234", "Dana Silva", False)
    assert (chat.last_inbound_at, chat.last_outbound_at, chat.last_message_at) == (at(10), None, at(10))
    assert ops.updates == {}


def test_chat_times_are_maxima_whatever_the_order() -> None:
    events = [DANA.received("a", t=30), DANA.sent("b", t=50), DANA.received("c", t=20), DANA.sent("d", t=40)]
    for order in itertools.permutations(events):
        chat = fold(items(order)).chats[DANA.key]
        assert (chat.last_inbound_at, chat.last_outbound_at, chat.last_message_at) == (at(30), at(50), at(50))


def test_the_newest_event_names_the_contact_and_older_ones_only_fill_gaps() -> None:
    old, new = Chat(contact_name="Dana"), Chat(contact_name="Dana Silva")
    events = [old.received("a", t=10), new.received("b", t=20), DANA.status("x", "read", t=30)]
    for order in itertools.permutations(events):
        chat = fold(items(order)).chats[DANA.key]
        assert (chat.contact_name, chat.profile_at) == ("Dana Silva", at(20))


@pytest.mark.parametrize("failed_then", ["delivered", "read", "played"])
def test_failed_ranks_above_sent_and_below_any_receipt(failed_then: str) -> None:
    assert status_rank("sent") < status_rank("failed") < status_rank(failed_then)


def test_statuses_end_at_the_furthest_whatever_the_order() -> None:
    error = StatusError(code=131026, title="Message undeliverable")
    events = [DANA.status("m1", "sent", 1), DANA.status("m1", "failed", 2, [error]), DANA.status("m1", "delivered", 3),
              DANA.status("m1", "read", 4), DANA.status("m1", "read", 9)]  # fmt: skip
    for order in itertools.permutations(events):
        update = fold(items(order)).updates[DANA.mid("m1")]
        assert (update.status, update.status_at, update.status_error) == ("read", at(4), None)


def test_a_failed_status_keeps_its_errors() -> None:
    error = StatusError(code=131026, title="Message undeliverable")
    events = [DANA.status("m1", "failed", 2, [error]), DANA.status("m1", "sent", 1)]
    update = fold(items(events)).updates[DANA.mid("m1")]
    assert update.status == "failed"
    assert orjson.loads(update.status_error or "") == [{"code": 131026, "title": "Message undeliverable"}]


def test_the_latest_edit_by_occurred_at_wins_and_deletion_keeps_the_first_time() -> None:
    events = [DANA.edited("m1", "second", 20), DANA.edited("m1", "first", 10), DANA.deleted("m1", 30),
              DANA.deleted("m1", 40)]  # fmt: skip
    for order in itertools.permutations(events):
        update = fold(items(order)).updates[DANA.mid("m1")]
        assert (update.edit_text, update.edited_at, update.deleted_at) == ("second", at(20), at(30))


def test_reactions_per_reactor_latest_wins_and_removal_is_a_tombstone() -> None:
    events = [DANA.reaction("m1", "👍", 10), DANA.reaction("m1", None, 20), DANA.reaction("m1", "❤️", 5, reactor="999")]
    for order in itertools.permutations(events):
        reactions = fold(items(order)).updates[DANA.mid("m1")].reactions
        assert reactions == {"15550001234": Reaction(None, "Dana Silva", at(20)),
                             "999": Reaction("❤️", "Dana Silva", at(5))}  # fmt: skip


def test_consent_latest_wins_and_a_tie_opts_out() -> None:
    events = [DANA.consent("a", "opted_out", 10), DANA.consent("b", "opted_in", 20), DANA.consent("c", "opted_out", 20)]
    for order in itertools.permutations(events):
        chat = fold(items(order)).chats[DANA.key]
        assert (chat.consent_state, chat.consent_changed_at) == ("opted_out", at(20))


def test_a_duplicate_message_is_one_row_and_fills_gaps() -> None:
    bare = DANA.sent("m1", "reply", t=5)
    echo = DANA.sent("m1", "reply", t=5, sender_name="Acme Support")
    ops = fold(items([bare, echo, bare]))
    assert len(ops.messages) == 1
    assert ops.messages[DANA.mid("m1")].sender_name == "Acme Support"


def test_unsupported_messages_are_rows_and_a_real_copy_replaces_them() -> None:
    poll, real = DANA.unsupported("m1", t=5), DANA.received("m1", "now readable", t=5)
    for order in ([poll, real], [real, poll]):
        ops = fold(items(order))
        row = ops.messages[DANA.mid("m1")]
        assert (row.message_type, row.body) == ("text", "now readable")
        assert orjson.loads(row.raw_event or "")["type"] == "message_received"


def test_unsupported_without_provider_id_is_kept_but_is_not_chat_activity() -> None:
    event = DANA.unsupported(None, t=5, provider_type="status:weird")
    ops = fold(items([event]))
    [row] = ops.messages.values()
    assert (row.id, row.provider_message_id) == (event.event_id, f"event:{event.event_id}")
    assert row.message_type == "unsupported"
    assert ops.chats[DANA.key].last_message_at is None


def test_each_text_of_a_message_is_a_version_keyed_by_its_event() -> None:
    events = [
        DANA.edited("m1", "second", 20),  # before its message
        DANA.received("m1", "first", t=10),
        DANA.received("m1", "first", t=10),  # a redelivery: same event id
        DANA.edited("m1", "second", 20),
        DANA.edited("m1", None, 30),  # cleared
        DANA.received("m2", None, t=11, message_type="image", caption="a caption"),
        DANA.received("m3", None, t=12, message_type="image"),  # no text: no version
        DANA.deleted("m1", 40), DANA.status("m1", "read", 41),
    ]  # fmt: skip
    ops = fold(items(events, partition=2, first_offset=100))
    found = {(v.message_id, v.kind, v.text, v.version_at, v.source_offset) for v in ops.versions.values()}
    assert found == {
        (DANA.mid("m1"), "edit", "second", at(20), 100), (DANA.mid("m1"), "original", "first", at(10), 101),
        (DANA.mid("m1"), "edit", None, at(30), 104), (DANA.mid("m2"), "original", "a caption", at(11), 105),
    }  # fmt: skip
    assert all(key == (v.message_id, v.event_id) and v.source_partition == 2 for key, v in ops.versions.items())
    assert ops.deleted_ids() == [DANA.mid("m1")]


def test_unsupported_messages_and_other_updates_make_no_version() -> None:
    events = [DANA.unsupported("m1", 1), DANA.reaction("m1", "👍", 2), DANA.status("m1", "read", 3),
              DANA.deleted("m2", 4)]  # fmt: skip
    ops = fold(items(events))
    assert ops.versions == {} and ops.deleted_ids() == [DANA.mid("m2")]


def test_merging_updates_is_order_independent() -> None:
    parts = [MessageUpdate("m", "c"), MessageUpdate("m", "c"), MessageUpdate("m", "c")]
    parts[0].status_seen("read", at(3), None)
    parts[0].reaction_seen("r", Reaction("👍", None, at(1)))
    parts[1].status_seen("delivered", at(2), None)
    parts[1].edit_seen("x", at(7))
    parts[2].deletion_seen(at(9))
    parts[2].reaction_seen("r", Reaction(None, None, at(1)))
    results = set()
    for order in itertools.permutations(parts):
        merged = MessageUpdate("m", "c")
        for part in order:
            merged.merge(part)
        results.add(repr(merged))
    assert len(results) == 1
    assert "status='read'" in results.pop()


@pytest.mark.parametrize(("provider", "case"), all_cases())
def test_every_provider_fixture_folds(provider: str, case: str) -> None:
    events = normalise(delivery(provider, case))
    ops = fold(items(events))
    assert set(ops.chats) == {e.chat_key for e in events}
    assert len(ops.messages) + len(ops.updates) >= 1


def test_status_order_is_the_documented_one() -> None:
    assert STATUS_ORDER == ("pending", "sent", "failed", "delivered", "read", "played")
