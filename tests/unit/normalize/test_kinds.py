"""Every webhook kind of streams/normalize/README.md: one delivery each through its normaliser.

The fixtures are ``tests/fixtures/webhooks/<provider>/kinds/<kind>.json``; ``KINDS`` says what
each must become, and a test keeps the fixtures, this table and the README's tables in step.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from contracts.ids import message_id
from contracts.messages import (
    MessageDeleted, MessageEdited, MessageUnsupported, ProviderEventUnsupported, decode_event, encode_event,
)  # fmt: skip
from streams.normalize.logic import normalise, normalise_parts
from tests.unit.normalize.webhooks import PROVIDER_DIRS, RECEIVED_AT, WEBHOOKS, at, delivery

README = Path(__file__).resolve().parents[3] / "streams" / "normalize" / "README.md"
R, S, E, D, ST = "message_received", "message_sent", "message_edited", "message_deleted", "status_updated"
U, P = "message_unsupported", "provider_event_unsupported"
DANA, RAVI = "15550001234", "15550005678"
GROUP = "120363000000000001@g.us"


def other(kind: str, n: int = 1) -> list[tuple[str, str | None]]:
    return [(P, kind)] * n


# provider -> kind -> the (event type, provider type) of each event, in order
KINDS: dict[str, dict[str, list[tuple[str, str | None]]]] = {
    "whapi": {
        "messages.post": [(R, None), (R, None)],
        "messages.patch": [(E, None)],
        "messages.delete": [(D, None)],
        "statuses.post": [(ST, None)],
        **{k: other(k) for k in (
            "chats.post", "chats.patch", "chats.delete", "contacts.post", "contacts.patch", "groups.post",
            "groups.put", "groups.patch", "presences.post", "calls.post",
        )},
    },
    "meta": {
        "messages": [(R, None)],
        "messages.unsupported": [(U, "unsupported:edit")],
        "messages.statuses": [(ST, None)],
        "messages.errors": other("messages.errors"),
        "smb_message_echoes": [(S, None)],
        "history": [(U, "history:text"), (U, "history:text"), (P, "history")],
        **{k: other(k) for k in (
            "smb_app_state_sync", "user_preferences", "calls", "account_update", "account_review_update",
            "account_alerts", "phone_number_name_update", "phone_number_quality_update",
            "message_template_status_update", "message_template_quality_update",
            "message_template_components_update", "template_category_update", "business_capability_update",
            "security",
        )},
    },
    "evolution": {
        "messages.upsert": [(R, None)],
        "send.message": [(S, None)],
        "messages.edited": [(E, None)],
        "messages.update": [(ST, None)],
        "messages.delete": [(D, None)],
        "messages.set": [(U, "messages.set:conversation")],
        **{k: other(k) for k in (
            "contacts.set", "contacts.upsert", "contacts.update", "chats.set", "chats.upsert", "chats.update",
            "chats.delete", "groups.upsert", "groups.update", "group-participants.update", "presence.update",
            "connection.update", "qrcode.updated", "call",
        )},
    },
}
ALL = [(provider, kind) for provider, kinds in KINDS.items() for kind in kinds]


def kind_bytes(provider: str, kind: str) -> bytes:
    return (WEBHOOKS / PROVIDER_DIRS[provider] / "kinds" / f"{kind}.json").read_bytes()


def events_of(provider: str, kind: str, **kw: str):  # type: ignore[no-untyped-def]
    return normalise(delivery(provider, body=kind_bytes(provider, kind), **kw))


@pytest.mark.parametrize(("provider", "kind"), ALL)
def test_every_kind_gives_its_events(provider: str, kind: str) -> None:
    found = normalise_parts(delivery(provider, body=kind_bytes(provider, kind)))
    assert found.failures == []
    assert [(e.type, getattr(e, "provider_type", None)) for e in found.events] == KINDS[provider][kind]
    for event in found.events:
        assert event.chat_key == f"{event.provider}:{event.channel_id}:{event.chat_id or ''}"
        assert event.raw  # the provider's own part is kept
        assert decode_event(encode_event(event)) == event
    again = events_of(provider, kind, delivery_id="redelivered")
    assert [e.event_id for e in again] == [e.event_id for e in found.events]  # a redelivery is the same events
    assert len({e.event_id for e in found.events}) == len(found.events)


def test_fixtures_table_and_readme_agree() -> None:
    readme = README.read_text()
    sections = dict(zip(("whapi", "meta", "evolution"), re.split(r"^### ", readme, flags=re.M)[1:], strict=True))
    for provider, kinds in KINDS.items():
        folder = WEBHOOKS / PROVIDER_DIRS[provider] / "kinds"
        assert {p.stem for p in folder.glob("*.json")} == set(kinds), provider
        listed = set(re.findall(r"^\| `([^`]+)`", sections[provider], flags=re.M))
        assert set(kinds) <= listed, (provider, set(kinds) - listed)


# --- Whapi -----------------------------------------------------------------------------------


def test_whapi_patch_is_an_edit_of_the_original_message() -> None:
    [edit] = events_of("whapi", "messages.patch")
    assert isinstance(edit, MessageEdited)
    assert (edit.target_provider_message_id, edit.target_message_id) == ("KIND-W-1", message_id("whapi", "TESTCH-A1B2C", "KIND-W-1"))
    assert (edit.new_text, edit.provider_message_id, edit.occurred_at) == ("Delivery on Friday, right?", "KIND-W-3", at(10, 21))
    assert (edit.chat_id, edit.direction, edit.sender_id, edit.sender_name) == (DANA, "inbound", DANA, "Dana Silva")


def test_whapi_patch_as_an_action_and_as_a_patch_is_one_event() -> None:
    """The trigger of a patch is the edit action Whapi also posts as a message: the same id."""
    [edit] = events_of("whapi", "messages.patch")
    trigger = orjson.loads(kind_bytes("whapi", "messages.patch"))["messages_updates"][0]["trigger"]
    body = {"messages": [trigger], "event": {"type": "messages", "event": "post"}, "channel_id": "TESTCH-A1B2C"}
    [action] = normalise(delivery("whapi", body=orjson.dumps(body)))
    assert action.event_id == edit.event_id and action.new_text == edit.new_text  # type: ignore[union-attr]


def test_whapi_patch_in_before_after_shape_without_trigger() -> None:
    update = orjson.loads(kind_bytes("whapi", "messages.patch"))["messages_updates"][0]
    shaped = {"id": "KIND-W-1", "before": update["before_update"], "after": update["after_update"]}
    body = {"messages_updates": [shaped], "event": {"type": "messages", "event": "patch"}, "channel_id": "TESTCH-A1B2C"}
    [edit] = normalise(delivery("whapi", body=orjson.dumps(body)))
    assert isinstance(edit, MessageEdited)
    assert (edit.target_provider_message_id, edit.new_text, edit.chat_id) == ("KIND-W-1", "Delivery on Friday, right?", DANA)
    assert edit.provider_message_id is None and edit.occurred_at == RECEIVED_AT  # no trigger: when we heard of it


def test_whapi_patch_of_something_else_than_the_text_is_kept_unmodelled() -> None:
    update = orjson.loads(kind_bytes("whapi", "messages.patch"))["messages_updates"][0]
    same = {"id": "KIND-W-1", "before_update": update["before_update"], "after_update": update["before_update"],
            "changes": ["star"]}  # fmt: skip
    unreadable = {"id": "KIND-W-7", "after_update": {"type": "image", "image": {}}, "changes": ["caption"]}
    body = {"messages_updates": [same, {"after_update": {"type": "text"}}, unreadable],
            "event": {"type": "messages", "event": "patch"}, "channel_id": "TESTCH-A1B2C"}  # fmt: skip
    found = normalise_parts(delivery("whapi", body=orjson.dumps(body)))
    kept, blank = found.events
    assert isinstance(kept, ProviderEventUnsupported)
    assert (kept.provider_type, kept.chat_id, kept.raw) == ("messages.patch", DANA, same)
    assert (blank.type, blank.raw) == (P, unreadable)  # an edit to no readable text would blank the message
    assert [(f.path, f.error) for f in found.failures] == [("messages_updates[1]", "messages_updates[1].id: missing")]


def test_whapi_delete_names_the_message_not_the_chat() -> None:
    [deleted] = events_of("whapi", "messages.delete")
    assert isinstance(deleted, MessageDeleted)
    assert (deleted.chat_id, deleted.chat_key, deleted.contact_phone) == ("", "whapi:TESTCH-A1B2C:", None)
    assert deleted.target_message_id == message_id("whapi", "TESTCH-A1B2C", "KIND-W-2")
    assert (deleted.raw, deleted.occurred_at, deleted.direction) == ({"id": "KIND-W-2"}, RECEIVED_AT, "outbound")
    # keyed by the target only: a revoke seen as an action is the same deletion
    action = {"id": "KIND-W-R", "type": "action", "chat_id": f"{DANA}@s.whatsapp.net", "from_me": True,
              "action": {"type": "delete", "target": "KIND-W-2"}}  # fmt: skip
    body = {"messages": [action], "event": {"type": "messages", "event": "post"}, "channel_id": "TESTCH-A1B2C"}
    assert normalise(delivery("whapi", body=orjson.dumps(body)))[0].event_id == deleted.event_id


def test_whapi_delete_items_may_be_objects_and_a_bad_one_fails_alone() -> None:
    removed = [{"id": "KIND-W-5", "chat_id": GROUP, "from_me": False, "timestamp": 1795170000}, 7, "KIND-W-6"]
    body = {"messages_removed": removed, "event": {"type": "messages", "event": "delete"}, "channel_id": "TESTCH-A1B2C"}
    found = normalise_parts(delivery("whapi", body=orjson.dumps(body)))
    first, second = found.events
    assert (first.chat_id, first.is_group, first.direction, first.occurred_at) == (GROUP, True, "inbound", at(10, 20))
    assert (second.chat_id, second.target_provider_message_id) == ("", "KIND-W-6")  # type: ignore[union-attr]
    assert [f.error for f in found.failures] == ["messages_removed[1]: NormaliseError: not a message id (int)"]


def test_whapi_unmodelled_items_keep_their_chat_and_raw_part() -> None:
    [presence] = events_of("whapi", "presences.post")
    assert (presence.chat_id, presence.chat_key) == (RAVI, f"whapi:TESTCH-A1B2C:{RAVI}")
    assert presence.raw == {"contact_id": f"{RAVI}@s.whatsapp.net", "status": "typing"}
    [group] = events_of("whapi", "groups.put")
    assert group.chat_id == GROUP
    [call] = events_of("whapi", "calls.post")
    assert (call.chat_id, call.occurred_at) == (RAVI, at(10, 20, 30))


def test_whapi_delivery_with_no_items_still_leaves_one_event() -> None:
    body = {"event": {"type": "messages", "event": "post"}, "messages": [], "channel_id": "TESTCH-A1B2C"}
    [kept] = normalise(delivery("whapi", body=orjson.dumps(body)))
    assert isinstance(kept, ProviderEventUnsupported)
    assert (kept.provider_type, kept.raw, kept.chat_id) == ("messages.post", body, None)


# --- Meta ------------------------------------------------------------------------------------


def test_meta_unsupported_records_what_it_was() -> None:
    [event] = events_of("meta", "messages.unsupported")
    assert isinstance(event, MessageUnsupported)
    assert (event.provider_type, event.reason, event.provider_message_id) == (
        "unsupported:edit", "Message type unknown", "wamid.KIND-M-2"
    )
    assert event.raw["unsupported"] == {"type": "edit"}


def test_meta_history_messages_keep_their_ids_sides_and_chat() -> None:
    inbound, outbound, chunk = events_of("meta", "history")
    for event, pmid, side in ((inbound, "wamid.KIND-M-H1", "inbound"), (outbound, "wamid.KIND-M-H2", "outbound")):
        assert isinstance(event, MessageUnsupported)
        assert (event.provider_message_id, event.message_id) == (pmid, message_id("meta", "100000000000001", pmid))
        assert (event.direction, event.chat_id, event.reason) == (side, DANA, "history sync")
    assert inbound.occurred_at == at(10, 20).replace(day=19)
    assert isinstance(chunk, ProviderEventUnsupported) and chunk.raw["errors"][0]["code"] == 2593109


def test_meta_account_notices_belong_to_the_business_account() -> None:
    [event] = events_of("meta", "phone_number_quality_update")
    assert (event.channel_id, event.chat_id, event.chat_key) == ("200000000000001", None, "meta:200000000000001:")
    assert event.occurred_at == at(10, 20)  # entry[].time
    assert event.raw["field"] == "phone_number_quality_update" and event.raw["value"]["event"] == "FLAGGED"
    [error] = events_of("meta", "messages.errors")
    assert (error.channel_id, error.reason) == ("100000000000001", "131000: Something went wrong")  # type: ignore[union-attr]


def test_meta_per_item_fields_name_their_chat() -> None:
    for kind in ("smb_app_state_sync", "user_preferences", "calls"):
        [event] = events_of("meta", kind)
        assert (event.chat_id, event.channel_id) == (RAVI, "100000000000001"), kind


def test_meta_empty_change_still_leaves_one_event() -> None:
    change = {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "1"}}}
    body = {"object": "whatsapp_business_account", "entry": [{"id": "2", "changes": [change]}]}
    [kept] = normalise(delivery("meta", body=orjson.dumps(body)))
    assert (kept.type, kept.provider_type, kept.raw) == (P, "messages", change)  # type: ignore[union-attr]


# --- Evolution -------------------------------------------------------------------------------


def test_evolution_qr_code_is_kept_without_its_pairing_secrets() -> None:
    [event] = events_of("evolution", "qrcode.updated")
    assert event.raw == {"qrcode": {"instance": "acme-main"},
                         "msgmem_removed": ["qrcode.base64", "qrcode.code", "qrcode.pairingCode"]}  # fmt: skip
    wire = encode_event(event)
    assert b"KQ7TX2MB" not in wire and b"fakeQrPayload" not in wire and b"iVBOR" not in wire


def test_evolution_unmodelled_events_name_their_chat() -> None:
    assert [e.chat_id for e in events_of("evolution", "chats.delete")] == [RAVI]  # a bare jid
    assert [e.chat_id for e in events_of("evolution", "group-participants.update")] == [GROUP]
    assert [e.chat_id for e in events_of("evolution", "connection.update")] == [None]
    [call] = events_of("evolution", "call")
    assert (call.chat_id, call.raw["id"]) == (RAVI, "KIND-E-CALL-1")  # a call id is not a chat


def test_evolution_history_messages_are_unsupported_rows_under_their_own_ids() -> None:
    [past] = events_of("evolution", "messages.set")
    assert isinstance(past, MessageUnsupported)
    assert (past.provider_message_id, past.chat_id, past.direction) == ("KIND-E-S1", RAVI, "inbound")
    assert past.message_id == message_id("evolution", "acme-main", "KIND-E-S1")
    wrapped = orjson.loads(kind_bytes("evolution", "messages.set"))
    wrapped["data"] = {"messages": wrapped["data"], "isLatest": True}
    assert normalise(delivery("evolution", body=orjson.dumps(wrapped))) == [past]
