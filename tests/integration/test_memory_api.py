"""The memory API against the real Postgres and over real HTTP (``python -m projections.recall``):
a chat written by the messages and media projectors' own writers (text both ways, delivery
statuses, a reaction, a voice note, an image with a stored file, a PDF, an edit, a deletion)
read back as chats, pages of messages and an agent's context; then schemathesis sends
requests generated from the live OpenAPI document and none may get a 5xx.

No OPENAI_API_KEY: recall runs on exact words. Rows are written once for the module (the
first step truncates the projected tables, as the ``db`` fixture does)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis.errors import Unsatisfiable
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode

from contracts.settings import Settings
from msgmem.localstack.stack import Stack
from projections.embeddings.vectors import register_vector
from projections.media.store import MediaWriter
from projections.messages.store import MessagesWriter
from projections.recall.memory import MemoryConfig, get_context
from projections.recall.request import ContextQuery
from tests.conftest import PROJECTED_TABLES
from tests.integration.test_recall_api import KEY, recall_service
from tests.unit.projections.factory import Chat
from tests.unit.projections.factory import items as message_items
from tests.unit.projections.test_media_rows import Media
from tests.unit.projections.test_media_rows import items as media_items

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {KEY}"}
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60
SIGNING_KEY = "memory-test-signing-key-0123456789abcdef"


@dataclass
class Seeded:
    chat: Chat
    other: Chat
    photo: Media


async def seed(pool: asyncpg.Pool, media_dir: Path) -> Seeded:
    """Dana's chat and Ravi's, as the projectors write them; the photo's file in ``media_dir``."""
    channel = f"M{uuid.uuid4().hex[:8]}"
    chat, other = Chat(channel=channel), Chat(channel=channel, chat_id="15550005678", contact_name="Ravi Patel")
    voice = Media(chat, "voice")
    photo = Media(chat, "photo", kind="image", mime="image/jpeg")
    pdf = Media(chat, "pdf", kind="document", mime="application/pdf")
    events = [
        chat.received("order", "Hi, is order 4271 still arriving on Thursday?", t=0),
        chat.sent("reply", "Yes Dana, Thursday after 3 pm.", t=60, sender_name="Acme Support"),
        chat.status("reply", "delivered", t=65), chat.status("reply", "read", t=90),
        chat.reaction("reply", "👍", t=100, direction="outbound"),
        chat.received("voice", None, t=120, message_type="voice"),
        chat.received("photo", None, t=180, message_type="image", caption="the box"),
        chat.received("pdf", None, t=240, message_type="document", caption="Invoice attached"),
        chat.received("typo", "I typed the wrong address", t=300), chat.edited("typo", "I typed the wrong street", t=310),
        chat.received("card", "my card number is 4111", t=360), chat.deleted("card", t=370),
        chat.received("refund", "Can you refund order 4271?", t=420),
        other.received("quote", "Hello, I'd like a quote for 4 chairs.", t=30),
    ]  # fmt: skip
    path = f"{photo.sha256[:2]}/{photo.sha256[2:4]}/{photo.sha256}.jpg"
    (media_dir / path).parent.mkdir(parents=True, exist_ok=True)
    (media_dir / path).write_bytes(JPEG)
    enriched = [
        voice.stored(121), voice.transcribed("The courier left the parcel at the wrong address.", 130),
        photo.stored(181, path=path), photo.captioned("A cardboard box with a torn corner.", 190),
        pdf.failed(241), pdf.extracted("INVOICE 2026-0193 Total 189.00 EUR", 250, pages=1),
    ]  # fmt: skip
    async with pool.acquire() as conn, conn.transaction():
        await MessagesWriter(redact_deleted=False).write(conn, message_items(events))
        await MediaWriter(redact_deleted=False).write(conn, media_items(enriched))
    return Seeded(chat, other, photo)


@dataclass
class World:
    seeded: Seeded
    pool: asyncpg.Pool
    base: str


@pytest.fixture(scope="module")
async def world(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    pool = await asyncpg.create_pool(stack.settings.database_url, min_size=1, max_size=4, init=register_vector)
    media_dir = tmp_path_factory.mktemp("media")
    try:
        await pool.execute(f"truncate {', '.join(PROJECTED_TABLES)}")
        seeded = await seed(pool, media_dir)
        settings = stack.settings.model_copy(update={"openai_api_key": None})
        with recall_service(settings, tmp_path_factory.mktemp("recall"), MEDIA_SIGNING_KEY=SIGNING_KEY,
                            MEDIA_LOCAL_DIR=str(media_dir)) as base:  # fmt: skip
            yield World(seeded, pool, base)
    finally:
        await pool.close()


async def get(world: World, path: str, **params: object) -> dict:  # type: ignore[type-arg]
    async with httpx.AsyncClient(base_url=world.base, headers=AUTH, timeout=10) as client:
        answer = await client.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def test_chats_are_listed_filtered_paged_and_described(world: World) -> None:
    chat, other = world.seeded.chat, world.seeded.other
    everything = await get(world, "/chats", channel=chat.channel)
    assert {c["chat"] for c in everything["chats"]} == {chat.key, other.key} and everything["next_cursor"] is None
    first = await get(world, "/chats", channel=chat.channel, limit=1)
    second = await get(world, "/chats", channel=chat.channel, limit=1, cursor=first["next_cursor"])
    assert {first["chats"][0]["chat"], second["chats"][0]["chat"]} == {chat.key, other.key}
    assert second["next_cursor"] is None
    [ravi] = (await get(world, "/chats", phone="+1 555-000-5678"))["chats"]
    assert (ravi["chat"], ravi["contact_name"]) == (other.key, "Ravi Patel")
    assert (await get(world, "/chats", provider="meta", channel=chat.channel))["chats"] == []
    assert (await get(world, "/chats", updated_since="2999-01-01T00:00:00Z"))["chats"] == []

    detail = await get(world, f"/chats/{chat.key}")
    assert detail["consent"] == {"state": "unknown", "changed_at": None}
    assert detail["service_window"]["closes_at"].startswith("2026-11-21T09:07:00")  # last inbound + 24 h
    assert detail["service_window"]["open"] is False  # long past
    assert detail["counts"] == {"messages": 8, "inbound": 7, "outbound": 1, "deleted": 1, "media": 3}


async def test_messages_page_both_ways_with_statuses_reactions_media_and_edits(world: World) -> None:
    chat = world.seeded.chat
    latest = await get(world, f"/chats/{chat.key}/messages", limit=3)
    assert [m["id"] for m in latest["messages"]] == [chat.mid(p) for p in ("typo", "card", "refund")]
    assert latest["newer_cursor"] is None and latest["older_cursor"] == latest["messages"][0]["cursor"]
    typo, card, _ = latest["messages"]
    assert (typo["body"], typo["edited_at"] is not None) == ("I typed the wrong street", True)
    assert card["deleted_at"] is not None

    older = await get(world, f"/chats/{chat.key}/messages", limit=3, before=latest["older_cursor"])
    assert [m["id"] for m in older["messages"]] == [chat.mid(p) for p in ("voice", "photo", "pdf")]
    oldest = await get(world, f"/chats/{chat.key}/messages", limit=3, before=older["older_cursor"])
    assert [m["id"] for m in oldest["messages"]] == [chat.mid("order"), chat.mid("reply")]
    assert oldest["older_cursor"] is None
    forward = await get(world, f"/chats/{chat.key}/messages", limit=5, after=oldest["messages"][-1]["cursor"])
    assert [m["id"] for m in forward["messages"]] == [chat.mid(p) for p in ("voice", "photo", "pdf", "typo", "card")]
    assert forward["newer_cursor"] == forward["messages"][-1]["cursor"]

    reply = oldest["messages"][1]
    assert (reply["role"], reply["status"], reply["direction"]) == ("assistant", "read", "outbound")
    assert [(r["emoji"], r["reactor"]) for r in reply["reactions"]] == [("👍", chat.chat_id)]
    voice, photo, pdf = older["messages"]
    assert voice["transcript"] == "The courier left the parcel at the wrong address."
    assert voice["media"][0]["enrichment"]["status"] == "done" and voice["media"][0]["url_unavailable"] is None
    [image] = photo["media"]
    assert (photo["caption"], image["description"]) == ("the box", "A cardboard box with a torn corner.")
    assert image["url"].startswith(f"{world.base}/media/") and image["url_expires_at"]
    async with httpx.AsyncClient(timeout=10) as client:
        fetched = await client.get(image["url"])  # no API key: the signature is the credential
        assert (fetched.status_code, fetched.content, fetched.headers["content-type"]) == (200, JPEG, "image/jpeg")
        forged = await client.get(image["url"].replace("signature=", "signature=0"))
        assert forged.status_code in (404, 422)
    [document] = pdf["media"]
    assert (document["status"], document["url"], document["url_unavailable"]) == ("failed", None, "the file is failed")
    assert pdf["extracted_text"] == "INVOICE 2026-0193 Total 189.00 EUR"


async def test_context_recalls_what_the_window_lacks_and_trims_to_the_budget(world: World) -> None:
    chat = world.seeded.chat
    answer = await get(world, f"/chats/{chat.key}/context", window=3)
    assert (answer["query"], answer["query_source"]) == ("Can you refund order 4271?", "latest_inbound")
    assert answer["semantic"] == {"used": False, "reason": "OPENAI_API_KEY is not set"}
    kinds = [(m["metadata"]["kind"], m["metadata"]["message_id"]) for m in answer["messages"]]
    assert kinds == [("recall", chat.mid("order")), ("window", chat.mid("typo")), ("window", chat.mid("card")),
                     ("window", chat.mid("refund"))]  # fmt: skip
    assert answer["recall_included"] is True and answer["recall_count"] == 1 and answer["window_count"] == 3
    contents = [m["content"] for m in answer["messages"]]
    assert "Hi, is order 4271 still arriving on Thursday?" in contents[0] and answer["messages"][0]["role"] == "system"
    assert contents[1:] == ["I typed the wrong street", "[deleted message]", "Can you refund order 4271?"]
    assert answer["tokens"] == sum(m["metadata"]["tokens"] for m in answer["messages"]) + 3

    media = await get(world, f"/chats/{chat.key}/context", q="courier parcel", window=4)
    texts = [m["content"] for m in media["messages"]]
    assert texts[0].endswith("The courier left the parcel at the wrong address.") and "transcript" in texts[0]
    assert texts[1] == "[document] Invoice attached\n[document text] INVOICE 2026-0193 Total 189.00 EUR"

    tight = await get(world, f"/chats/{chat.key}/context", window=3, max_tokens=30)
    assert tight["tokens"] <= 30 and tight["trimmed"]["any"] and tight["trimmed"]["recall"] == 1
    assert tight["messages"][-1]["metadata"]["message_id"] == chat.mid("refund")


async def test_the_same_context_in_process_and_deleted_messages_omitted_when_redacted(world: World) -> None:
    chat = world.seeded.chat
    over_http = await get(world, f"/chats/{chat.key}/context", window=3)
    config = MemoryConfig.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    in_process = await get_context(world.pool, None, chat.key, ContextQuery(window=3), config)
    assert in_process.model_dump(mode="json")["messages"] == over_http["messages"]
    redacted = await get_context(world.pool, None, chat.key, ContextQuery(window=3),
                                 MemoryConfig(redact_deleted=True))  # fmt: skip
    assert chat.mid("card") not in [m.metadata.message_id for m in redacted.messages]


async def test_refusals_name_fields_never_values(world: World) -> None:
    chat = world.seeded.chat
    async with httpx.AsyncClient(base_url=world.base, timeout=10) as client:
        assert (await client.get("/chats", params={"limit": 0})).status_code == 401  # the key before anything
        bad = await client.get(f"/chats/{chat.key}/messages", params={"before": "4111", "limit": 2}, headers=AUTH)
        assert bad.status_code == 422 and bad.json() == {"error": "invalid_query", "reason": "before: invalid_cursor"}
        both = await client.get(f"/chats/{chat.key}/messages", params={"before": "a", "after": "b"}, headers=AUTH)
        assert both.json()["reason"] == "query: before_and_after"
        unknown = await client.get("/chats/whapi:NOPE:1/context", headers=AUTH)
        assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_chat"


async def test_no_generated_request_gets_a_server_error(world: World) -> None:
    """Requests schemathesis generates from the live OpenAPI document, valid ones and invalid
    ones (out of range, wrong types, odd text), every operation, with the key: never a 5xx.
    Driven through hypothesis here: schemathesis's pytest plugin does not run on this pytest."""
    failures = await asyncio.to_thread(server_errors, world.base)
    assert not failures, failures[:10]


def server_errors(base: str) -> list[tuple[str, str, int]]:
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[tuple[str, str, int]] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(mode))
            @hypothesis_settings(max_examples=25, deadline=None, database=None,
                                 suppress_health_check=list(HealthCheck))  # fmt: skip
            def check(case: schemathesis.Case) -> None:
                response = case.call(base_url=base, headers=AUTH, timeout=10)
                if response.status_code >= 500:
                    failures.append((case.method, case.formatted_path, response.status_code))

            try:
                check()
            except Unsatisfiable:  # an operation with nothing to get wrong (no parameters): no invalid request
                assert mode is GenerationMode.NEGATIVE
    return failures
