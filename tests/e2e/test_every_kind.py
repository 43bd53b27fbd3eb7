"""End to end, one delivery of every webhook kind of streams/normalize/README.md: HTTP ->
ingest -> wa.raw -> normalize (Faust worker) -> wa.messages -> projector -> Postgres.

Each delivery must produce exactly the events its normaliser gives (none lost on the way,
none dead-lettered by normalize or the projector), modelled ones must reach their rows and
unmodelled non-message ones must not make chats. Ids and phone numbers are made unique per
run, so the test passes alone and beside the other e2e tests.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest

from contracts import messages, raw
from contracts.settings import Settings
from ingest.bootstrap import create_app
from msgmem.dlq import load
from msgmem.localstack.http_server import serving
from runtime.kafka import end_offsets
from msgmem.send import signed_headers
from streams.normalize.logic import normalise
from tests.integration.test_ingest import CREDS, ingest_settings
from tests.services import running
from tests.unit.normalize.test_kinds import DANA, KINDS, RAVI, kind_bytes
from tests.unit.normalize.webhooks import delivery
from tests.waiting import eventually, read_since

pytestmark = pytest.mark.integration

CHANNELS = {"whapi": "TESTCH-A1B2C", "meta": "100000000000001", "evolution": "acme-main"}


@pytest.fixture(scope="module")
def pipeline(module_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    logs = tmp_path_factory.mktemp("e2e-kinds-logs")
    with running("normalize", module_settings, logs), running("projector", module_settings, logs):
        yield module_settings


@pytest.fixture
async def client(pipeline: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(create_app(ingest_settings(pipeline))) as url, httpx.AsyncClient(base_url=url, timeout=30) as c:
        yield c


def phone() -> str:
    return f"1555{uuid.uuid4().int % 10**7:07d}"


async def test_every_kind_reaches_wa_messages_and_its_rows(
    client: httpx.AsyncClient, db: asyncpg.Connection, pipeline: Settings
) -> None:
    run, dana, ravi = uuid.uuid4().hex[:10], phone(), phone()

    def unique(body: bytes) -> bytes:
        body = body.replace(b"KIND-", f"KIND{run}-".encode())
        return body.replace(DANA.encode(), dana.encode()).replace(RAVI.encode(), ravi.encode())

    start = await end_offsets(pipeline, messages.TOPIC)
    raw_start = {tp.partition: offset for tp, offset in (await end_offsets(pipeline, raw.TOPIC)).items()}
    expected: dict[str, set[str]] = {}  # delivery id -> the event ids its normaliser gives
    posted: list[bytes] = []
    for provider, kinds in KINDS.items():  # in table order: messages before their edits and deletions
        for kind in kinds:
            body = unique(kind_bytes(provider, kind))
            r = await client.post(f"/webhooks/{provider}", content=body, headers=signed_headers(provider, body, CREDS))
            assert r.status_code == 200, (provider, kind, r.text)
            events = normalise(delivery(provider, body=body))
            assert len(events) == len(kinds[kind]), (provider, kind)
            expected[r.json()["delivery_id"]] = {e.event_id for e in events}
            posted.append(body)

    async def all_events():  # type: ignore[no-untyped-def]
        found: dict[str, set[str]] = defaultdict(set)
        where: list[tuple[int, int]] = []
        for rec in await read_since(pipeline, messages.TOPIC, start):
            event = messages.decode_event(rec.value)
            if event.delivery_id in expected:
                found[event.delivery_id].add(event.event_id)
                where.append((rec.partition, rec.offset))
        return (found, where) if all(found[d] >= ids for d, ids in expected.items()) else None

    found, where = await eventually(all_events, timeout=120)
    assert {d: found[d] for d in expected} == expected  # each delivery: exactly its events

    last: dict[int, int] = {}
    for partition, offset in where:
        last[partition] = max(last.get(partition, -1), offset)

    async def projected():  # type: ignore[no-untyped-def]
        rows = await db.fetch(
            "select partition, next_offset from projection_offsets where projection = 'chat_messages'"
            " and topic = $1", messages.TOPIC,
        )  # fmt: skip
        done = {r["partition"]: r["next_offset"] for r in rows}
        return all(done.get(p, 0) > offset for p, offset in last.items())

    await eventually(projected, timeout=60)

    letters = (await load(pipeline)).values()
    ours = set(where)
    mine = [x.letter for x in letters if x.letter.stage == "normalize" and x.letter.topic == raw.TOPIC
            and x.letter.offset >= raw_start.get(x.letter.partition, 0)]  # not another test's leftovers
    assert not [letter.dead_letter_id for letter in mine if letter.value in posted]
    assert not [x.letter.dead_letter_id for x in letters
                if x.letter.topic == messages.TOPIC and (x.letter.partition, x.letter.offset) in ours]  # fmt: skip

    async def row(provider: str, pmid: str) -> asyncpg.Record | None:
        return await db.fetchrow(
            "select body, message_type, edited_at, deleted_at, status from chat_messages"
            " where provider = $1 and provider_message_id = $2", provider, pmid,
        )  # fmt: skip

    edited = await row("whapi", f"KIND{run}-W-1")
    assert edited and (edited["body"], edited["edited_at"] is not None) == ("Delivery on Friday, right?", True)
    removed = await row("whapi", f"KIND{run}-W-2")
    assert removed and removed["deleted_at"] is not None  # messages.delete named no chat, found by its id
    for pmid in (f"wamid.KIND{run}-M-2", f"wamid.KIND{run}-M-H1", f"wamid.KIND{run}-M-H2"):
        kept = await row("meta", pmid)
        assert kept and kept["message_type"] == "unsupported", pmid
    evo_edited = await row("evolution", f"KIND{run}-E-1")
    assert evo_edited and evo_edited["body"] == "Can I change the delivery address?"
    evo_sent = await row("evolution", f"KIND{run}-E-2")
    assert evo_sent and evo_sent["deleted_at"] is not None and evo_sent["status"] == "read"

    chats = {r["chat_key"] for r in await db.fetch("select chat_key from chats where chat_id in ($1, $2)", dana, ravi)}
    assert {f"{p}:{c}:{dana}" for p, c in CHANNELS.items()} <= chats
    # Ravi only appears in presences, contact and chat syncs, calls...: no chat, except Evolution's
    # history sync (messages.set), which is a past message of a real conversation.
    assert {k for k in chats if k.endswith(f":{ravi}")} == {f"evolution:acme-main:{ravi}"}
    assert await db.fetchval("select count(*) from chats where chat_id = ''") == 0
