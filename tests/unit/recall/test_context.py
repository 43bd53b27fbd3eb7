"""An agent's context without Postgres: what each kind of message says to an agent, roles, and
trimming to a token budget (recall snippets first, lowest score first, then the oldest window
messages; the newest is cut, never dropped); cursors and signed media links."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from projections.recall import cursor
from projections.recall.context import REPLY_PRIMING, WindowMessage, agent_text, assemble, role_of
from projections.recall.media_links import MediaLinks
from projections.recall.search import Snippet
from runtime.media_storage import verify_local_signature
from runtime.tokenizer import load_tokenizer

TOKENIZER = load_tokenizer("cl100k_base")
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def msg(n: int, text: str | None = "hello", **kw: object) -> WindowMessage:
    fields = {"origin": "user", "direction": "inbound", "message_type": "text", "sender_id": "15550001234",
              "sender_name": "Dana Silva", "body": text} | kw  # fmt: skip
    return WindowMessage(message_id=f"m{n}", occurred_at=T0 + timedelta(minutes=n), **fields)  # type: ignore[arg-type]


def snip(n: int, score: float, text: str = "the parcel code is 7788", source: str = "text") -> Snippet:
    return Snippet(message_id=f"old{n}", chunk_index=None, source=source, text=text, start_token=None, end_token=None,
                   similarity=None, score=score, matched="words", occurred_at=T0 - timedelta(days=n),
                   sender_id="15550001234", sender_name="Dana Silva", direction="inbound", message_type="text")  # fmt: skip


def test_each_kind_of_message_is_rendered_with_what_an_agent_should_read() -> None:
    assert agent_text(msg(1, "Where is my order?")) == "Where is my order?"
    assert agent_text(msg(2, None, message_type="voice", transcript="It came broken.")) == (
        "[voice note transcript] It came broken.")
    assert agent_text(msg(3, None, message_type="voice")) == "[voice note, not transcribed]"
    assert agent_text(msg(4, None, message_type="audio", transcript="Hold music")) == "[audio transcript] Hold music"
    assert agent_text(msg(5, None, message_type="image", caption="my receipt", description="A paper receipt.")) == (
        "[image] my receipt\n[image description] A paper receipt.")
    # The sender wrote no caption: chat_messages.caption holds the AI description (caption_generated).
    assert agent_text(msg(6, None, message_type="image", caption="A box.", caption_generated=True)) == (
        "[image]\n[image description] A box.")
    assert agent_text(msg(7, None, message_type="document", filename="invoice.pdf", caption="Invoice attached",
                          extracted_text="INVOICE 2026-0193")) == (
        "[document] invoice.pdf Invoice attached\n[document text] INVOICE 2026-0193")  # fmt: skip
    assert agent_text(msg(8, None, message_type="sticker")) == "[sticker]"
    assert agent_text(msg(9, "secret", deleted=True)) == "[deleted message]"


def test_roles_come_from_origin_then_direction() -> None:
    assert role_of("user", "inbound") == "user" and role_of("agent", "outbound") == "assistant"
    assert role_of("system", "outbound") == "assistant" and role_of("system", "inbound") == "user"


def test_everything_fits_recall_first_oldest_first_and_tokens_as_openai_counts_them() -> None:
    window = [msg(1, "Hi"), msg(2, "Thursday after 3 pm.", origin="agent", direction="outbound")]
    out = assemble(window, [snip(1, 0.02), snip(2, 0.03)], TOKENIZER, 4000)
    assert [m.metadata.kind for m in out.messages] == ["recall", "recall", "window", "window"]
    assert [m.metadata.message_id for m in out.messages[:2]] == ["old2", "old1"]  # oldest first
    assert [m.role for m in out.messages] == ["system", "system", "user", "assistant"]
    assert out.messages[0].content.startswith("[recalled from earlier in this chat: 2026-11-18 09:00 UTC, Dana Silva,")
    per_message = [3 + len(TOKENIZER.encode(m.role)) + len(TOKENIZER.encode(m.content)) for m in out.messages]
    assert [m.metadata.tokens for m in out.messages] == per_message
    assert out.tokens == sum(per_message) + REPLY_PRIMING
    assert (out.recall_count, out.window_count, out.trimmed.any) == (2, 2, False)


def test_over_budget_recall_goes_first_lowest_score_first_then_the_oldest_window_messages() -> None:
    window = [msg(n, f"message number {n} " * 5) for n in range(1, 5)]
    snippets = [snip(1, 0.05), snip(2, 0.01), snip(3, 0.03)]
    full = assemble(window, snippets, TOKENIZER, 100_000)
    cost = {m.metadata.message_id: m.metadata.tokens for m in full.messages}

    one_less = full.tokens - cost["old2"]
    out = assemble(window, snippets, TOKENIZER, one_less)
    assert [m.metadata.message_id for m in out.messages if m.metadata.kind == "recall"] == ["old3", "old1"]
    assert out.trimmed.recall == 1 and out.trimmed.window == 0 and out.tokens <= one_less

    no_recall_two_window = full.tokens - sum(cost[k] for k in ("old1", "old2", "old3", "m1", "m2"))
    out = assemble(window, snippets, TOKENIZER, no_recall_two_window)
    assert [m.metadata.message_id for m in out.messages] == ["m3", "m4"]
    assert (out.trimmed.recall, out.trimmed.window, out.recall_count) == (3, 2, 0)


def test_the_newest_message_is_cut_rather_than_dropped() -> None:
    long = "The parcel arrived damaged and the box was open. " * 200
    out = assemble([msg(1, "earlier"), msg(2, long)], [snip(1, 0.1)], TOKENIZER, 120)
    [last] = out.messages
    assert last.metadata.message_id == "m2" and last.metadata.truncated and last.content.endswith("… [cut]")
    assert out.tokens <= 120 and out.trimmed.truncated and out.trimmed.window == 1 and out.trimmed.recall == 1
    assert assemble([msg(1, long)], [], TOKENIZER, 5).messages == []  # not even the head fits


def test_group_messages_name_their_sender() -> None:
    out = assemble([msg(1, "Truck is late", sender_name="Ravi")], [], TOKENIZER, 1000, is_group=True)
    assert out.messages[0].content == "Ravi: Truck is late"


def test_cursors_round_trip_and_refuse_anything_else() -> None:
    at = datetime(2026, 11, 20, 9, 15, 0, 123456, tzinfo=UTC)
    assert cursor.decode(cursor.encode(at, "whapi:CH:1555"), "cursor") == (at, "whapi:CH:1555")
    for bad in ("", "!!", "bm9waXBl", cursor.encode(at, "")[:-2] + "zz"):
        with pytest.raises(cursor.InvalidCursor) as caught:
            cursor.decode(bad, "before")
        assert caught.value.reason == "before: invalid_cursor"


async def test_local_media_links_are_signed_and_expire(tmp_path: Path) -> None:
    key = b"k" * 32
    (tmp_path / "ab").mkdir()
    (tmp_path / "ab" / "abcd.jpg").write_bytes(b"\xff\xd8\xff")
    links = MediaLinks(300, local_key=key, local_root=tmp_path)
    link = await links.link("stored", "ab/abcd.jpg", "http://recall.test/")
    assert link.url is not None and link.url.startswith("http://recall.test/media/ab/abcd.jpg?expires=")
    expires = int(link.url.split("expires=")[1].split("&")[0])
    signature = link.url.split("signature=")[1]
    assert verify_local_signature("ab/abcd.jpg", expires, signature, key) and expires <= time.time() + 301
    assert links.local_object("ab/abcd.jpg", expires, signature) == (tmp_path / "ab" / "abcd.jpg", "image/jpeg")
    assert links.local_object("ab/abcd.jpg", expires, "0" * 64) is None
    assert links.local_object("ab/abcd.jpg", int(time.time()) - 1, signature) is None
    assert (await links.link("failed", "ab/abcd.jpg", None)).unavailable == "the file is failed"
    unsigned = await MediaLinks(300, local_root=tmp_path).link("stored", "ab/abcd.jpg", "http://recall.test/")
    assert (unsigned.url, unsigned.unavailable) == (None, "MEDIA_SIGNING_KEY is not set")
