"""End to end: provider webhooks over HTTP -> ingest -> wa.raw -> normalize (Faust worker)
-> wa.messages -> projector -> Postgres rows. Real broker, real Postgres, real processes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import orjson
import pytest

from contracts import deadletter
from contracts.settings import Settings
from ingest.bootstrap import create_app
from msgmem.dlq import load
from msgmem.localstack.http_server import serving
from msgmem.send import signed_headers
from tests.conftest import FIXTURES
from tests.integration.test_ingest import CREDS, ingest_settings
from tests.services import running
from tests.waiting import eventually

pytestmark = pytest.mark.integration

WEBHOOKS = FIXTURES / "webhooks"
PROVIDER_DIRS = {"whapi": "whapi", "meta": "meta_cloud", "evolution": "evolution"}


@pytest.fixture(scope="module")
def pipeline(module_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """normalize and the projector as real processes for the module's tests."""
    logs = tmp_path_factory.mktemp("e2e-logs")
    with running("normalize", module_settings, logs), running("projector", module_settings, logs):
        yield module_settings


@pytest.fixture
async def client(pipeline: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(create_app(ingest_settings(pipeline))) as url, httpx.AsyncClient(base_url=url, timeout=30) as c:
        yield c


async def post(client: httpx.AsyncClient, provider: str, body: bytes) -> None:
    r = await client.post(f"/webhooks/{provider}", content=body, headers=signed_headers(provider, body, CREDS))
    assert r.status_code == 200, r.text


async def rows_when(db: asyncpg.Connection, query: str, *args: object, expect, timeout: float = 30):  # type: ignore[no-untyped-def]
    """The query's rows once ``expect(rows)`` holds."""

    async def check():  # type: ignore[no-untyped-def]
        rows = await db.fetch(query, *args)
        return rows if expect(rows) else None

    return await eventually(check, timeout)


async def test_every_fixture_gives_its_rows(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    for provider, folder in PROVIDER_DIRS.items():
        for path in sorted((WEBHOOKS / folder).glob("*.json")):
            await post(client, provider, path.read_bytes())

    kinds = {"text", "image", "voice", "audio", "video", "document", "sticker", "location"}

    def complete(rows: list[asyncpg.Record]) -> bool:
        """Every provider's every kind projected and its status read (the partitions may lag each other)."""
        return all(
            kinds <= {r["message_type"] for r in rows if r["provider"] == p}
            and any(r["provider"] == p and r["status"] == "read" for r in rows) for p in ("whapi", "meta", "evolution")
        ) and len(rows) >= 36  # fmt: skip

    rows = await rows_when(
        db, "select provider, message_type, direction, origin, body, status from chat_messages order by provider",
        expect=complete,
    )
    by_provider = {p: [r for r in rows if r["provider"] == p] for p in PROVIDER_DIRS}
    for provider, found in by_provider.items():
        types = {r["message_type"] for r in found}
        assert kinds <= types, (provider, types)
        assert any(r["direction"] == "outbound" and r["origin"] == "agent" for r in found), provider
        assert any(r["body"] == "Hi, is order 4271 still arriving on Thursday?" for r in found), provider

    chats = await db.fetch("select chat_key, is_group, last_inbound_at, contact_phone from chats")
    assert any(c["is_group"] for c in chats) and any(c["contact_phone"] == "15550001234" for c in chats)
    assert all(c["last_inbound_at"] is not None for c in chats if not c["is_group"] and c["contact_phone"] == "15550001234")


async def test_the_same_delivery_twice_gives_one_row(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    body = orjson.loads((WEBHOOKS / "whapi" / "text.json").read_bytes())
    body["messages"][0]["id"] = f"dup-{uuid.uuid4().hex}"
    raw_body = orjson.dumps(body)
    await post(client, "whapi", raw_body)
    await post(client, "whapi", raw_body)
    marker = body["messages"][0]["id"]
    sentinel = dict(body["messages"][0], id=f"after-{marker}")
    await post(client, "whapi", orjson.dumps(dict(body, messages=[sentinel])))  # arrives after both copies
    rows = await rows_when(
        db, "select provider_message_id from chat_messages where provider_message_id in ($1, $2)",
        marker, sentinel["id"], expect=lambda rows: len({r["provider_message_id"] for r in rows}) == 2,
    )
    assert sorted(r["provider_message_id"] for r in rows) == sorted([marker, sentinel["id"]])


async def test_opt_out_keyword_changes_consent(client: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    body = orjson.loads((WEBHOOKS / "whapi" / "text.json").read_bytes())
    message = dict(body["messages"][0], id=f"stop-{uuid.uuid4().hex}", text={"body": "  Stop "},
                   chat_id="15550009999@s.whatsapp.net", **{"from": "15550009999"})
    await post(client, "whapi", orjson.dumps(dict(body, messages=[message])))
    rows = await rows_when(
        db, "select consent_state from chats where contact_phone = '15550009999'",
        expect=lambda rows: rows and rows[0]["consent_state"] == "opted_out",
    )
    assert rows[0]["consent_state"] == "opted_out"


async def test_a_poison_delivery_is_dead_lettered_while_the_rest_flows(
    client: httpx.AsyncClient, db: asyncpg.Connection, pipeline: Settings
) -> None:
    poison = orjson.dumps({"messages": "not a list", "channel_id": "TESTCH-A1B2C"})
    await post(client, "whapi", poison)
    body = orjson.loads((WEBHOOKS / "whapi" / "text.json").read_bytes())
    after = dict(body["messages"][0], id=f"after-poison-{uuid.uuid4().hex}")
    await post(client, "whapi", orjson.dumps(dict(body, messages=[after])))
    await rows_when(db, "select 1 from chat_messages where provider_message_id = $1", after["id"],
                     expect=lambda rows: len(rows) == 1)
    letters = await load(pipeline)
    assert any(x.letter.stage == "normalize" and x.letter.value == poison and x.letter.topic == "wa.raw"
               for x in letters.values())
    assert deadletter.TOPIC == "wa.deadletter"


async def test_one_bad_message_is_dead_lettered_alone_and_its_neighbours_become_rows(
    client: httpx.AsyncClient, db: asyncpg.Connection, pipeline: Settings
) -> None:
    """Five messages in one Whapi delivery, the third with a timestamp no parser reads: four
    rows, and one open dead letter for that message's part of the delivery."""
    body = orjson.loads((WEBHOOKS / "whapi" / "text.json").read_bytes())
    phone = f"1555{uuid.uuid4().int % 10**7:07d}"  # a chat of this test's own
    run = uuid.uuid4().hex
    template = dict(body["messages"][0], chat_id=f"{phone}@s.whatsapp.net", **{"from": phone})
    sent = [dict(template, id=f"part-{run}-{i}", text={"body": f"part {i}"}, timestamp=1795166100 + i) for i in range(5)]
    sent[2]["timestamp"] = "in the year of the secret"
    raw_body = orjson.dumps(dict(body, messages=sent))
    await post(client, "whapi", raw_body)

    chat_key = f"whapi:{body['channel_id']}:{phone}"
    rows = await rows_when(
        db, "select provider_message_id from chat_messages where chat_key = $1", chat_key,
        expect=lambda rows: len(rows) == 4,
    )
    assert sorted(r["provider_message_id"] for r in rows) == [f"part-{run}-{i}" for i in (0, 1, 3, 4)]

    async def letters_for_delivery():  # type: ignore[no-untyped-def]
        return [x for x in (await load(pipeline)).values() if x.letter.value == raw_body] or None

    [letter] = await eventually(letters_for_delivery)
    assert letter.open and letter.letter.stage == "normalize" and letter.letter.topic == "wa.raw"
    assert letter.letter.part == "messages[2]"
    assert letter.letter.dead_letter_id.endswith(f":{letter.letter.offset}#messages[2]")
    assert (letter.letter.error_type, letter.letter.error) == ("MalformedItem", "MalformedItem: messages[2].timestamp: ValueError")
    assert await db.fetchval("select count(*) from chat_messages where chat_key = $1", chat_key) == 4
