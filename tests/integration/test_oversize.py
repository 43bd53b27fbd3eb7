"""Records over a topic's limit, against a broker with a hosted cluster's 1 MiB record limit
(topics created under KAFKA_MAX_MESSAGE_BYTES=1 MiB). Ingest refuses a body that could not
fit wa.raw; normalize stores an oversized event with its raw part trimmed; a record the
broker refuses dead-letters only the input that produced it; a dead letter too large for
wa.deadletter keeps its coordinates and `msgmem dlq retry` reads the bytes again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts import deadletter, raw
from contracts.deadletter import DeadLettered
from contracts.settings import Settings
from ingest.bootstrap import create_app
from msgmem.dlq import original_record
from msgmem.localstack.http_server import serving
from runtime.kafka import connection_config, end_offsets, make_producer, read_range
from msgmem.localstack.stack import Stack, start_stack
from msgmem.send import signed_headers
from streams.common.outputs import KafkaOutputs
from streams.common.records import InputRecord, Output
from streams.common.runner import RetryPolicy, StageRunner
from tests.conftest import FIXTURES
from tests.integration.test_ingest import CREDS, ingest_settings
from tests.services import running
from tests.waiting import eventually, read_since

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("one-mib"), max_message_bytes=MIB)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def pipeline(small: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    logs = tmp_path_factory.mktemp("one-mib-logs")
    cap = {"KAFKA_MAX_MESSAGE_BYTES": str(MIB)}
    with running("normalize", small.settings, logs, **cap), running("projector", small.settings, logs, **cap):
        yield small.settings


@pytest.fixture
async def client(pipeline: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(create_app(ingest_settings(pipeline))) as url, httpx.AsyncClient(base_url=url, timeout=30) as c:
        yield c


def whapi_delivery(chat: str, texts: list[str]) -> bytes:
    body = orjson.loads((FIXTURES / "webhooks" / "whapi" / "text.json").read_bytes())
    [template] = body["messages"]
    body["messages"] = [
        dict(template, id=f"{chat}-{i}", chat_id=f"{chat}@s.whatsapp.net", text={"body": text}, timestamp=1795166100 + i)
        for i, text in enumerate(texts)
    ]
    return orjson.dumps(body)


async def post(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await client.post("/webhooks/whapi", content=body, headers=signed_headers("whapi", body, CREDS))


async def test_ingest_refuses_a_body_that_could_not_fit_wa_raw(client: httpx.AsyncClient, pipeline: Settings) -> None:
    assert pipeline.ingest_body_limit == MIB - 64 * 1024
    response = await post(client, whapi_delivery(f"1555{uuid.uuid4().int % 10**7:07d}", ["x" * MIB]))
    assert response.status_code == 413 and "reason" in response.json()


async def test_an_oversized_event_is_stored_with_its_raw_part_trimmed_and_its_neighbours_flow(
    client: httpx.AsyncClient, pipeline: Settings
) -> None:
    chat = f"1556{uuid.uuid4().int % 10**7:07d}"
    big = "y" * (600 * 1024)  # the event would carry it twice (text and raw): 1.2 MB
    response = await post(client, whapi_delivery(chat, ["before", big, "after"]))
    assert response.status_code == 200, response.text
    db = await asyncpg.connect(pipeline.database_url)
    try:

        async def rows():  # type: ignore[no-untyped-def]
            found = await db.fetch(
                "select provider_message_id, length(body) as n, raw_event from chat_messages "
                "where chat_key like $1 order by provider_message_id", f"%{chat}%",
            )  # fmt: skip
            return found if len(found) == 3 else None

        found = await eventually(rows, timeout=60)
    finally:
        await db.close()
    assert [r["n"] for r in found] == [6, len(big), 5]
    assert orjson.loads(found[1]["raw_event"])["raw"]["msgmem_trimmed"] is True
    assert "msgmem_trimmed" not in orjson.loads(found[0]["raw_event"])["raw"]


async def test_a_record_the_broker_refuses_dead_letters_its_input_alone(small: Stack) -> None:
    settings = small.settings
    scratch = f"test.oversize.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**connection_config(settings))
    await admin.start()
    try:  # a topic whose real limit (64 KiB) is below what the writer believes (1 MiB)
        await admin.create_topics([NewTopic(scratch, 1, 1, topic_configs={"max.message.bytes": str(64 * 1024)})])
    finally:
        await admin.close()
    inputs = [InputRecord("wa.raw", 0, 10_000 + i, b"k", b"input-%d" % i) for i in range(3)]

    async def handle(record: InputRecord) -> list[Output]:
        size = 200 * 1024 if record.offset == 10_001 else 10
        return [Output(scratch, b"k", record.value + b"-" + b"z" * size)]

    start = await end_offsets(settings, deadletter.TOPIC)
    writer = await KafkaOutputs.start(settings)
    try:
        await StageRunner("oversize-test", handle, writer, policy=RetryPolicy(attempts=1)).run_batch(inputs)
    finally:
        await writer.stop()
    written = await eventually(lambda: _all(settings, scratch, 2), timeout=30)
    assert sorted(r.value[:7] for r in written) == [b"input-0", b"input-2"]
    letters = [DeadLettered.decode(r.value) for r in await read_since(settings, deadletter.TOPIC, start)
               if r.key == b"oversize-test"]  # fmt: skip
    assert [(x.offset, x.error_type) for x in letters] == [(10_001, "RecordTooLarge")]
    assert scratch in letters[0].error and letters[0].value == b"input-1"


async def test_a_dead_letter_too_large_keeps_its_coordinates_and_retry_reads_the_bytes_again(small: Stack) -> None:
    settings = small.settings
    value = orjson.dumps({"pad": "p" * (900 * 1024)})  # base64 in a letter: 1.2 MB, over 1 MiB
    producer = make_producer(settings)
    await producer.start()
    try:
        meta = await (await producer.send(raw.TOPIC, value, key=b"oversize:test"))
    finally:
        await producer.stop()
    [rec] = await read_range(settings, raw.TOPIC, {meta.topic_partition: meta.offset}, {meta.topic_partition: meta.offset + 1})
    record = InputRecord(rec.topic, rec.partition, rec.offset, rec.key, rec.value, tuple(rec.headers))

    async def poison(_record: InputRecord) -> list[Output]:
        raise ValueError("cannot read it")

    start = await end_offsets(settings, deadletter.TOPIC)
    writer = await KafkaOutputs.start(settings)
    try:
        await StageRunner("oversize-poison", poison, writer, policy=RetryPolicy(attempts=1)).run_batch([record])
    finally:
        await writer.stop()
    [letter] = [DeadLettered.decode(r.value) for r in await read_since(settings, deadletter.TOPIC, start)
                if r.key == b"oversize-poison"]  # fmt: skip
    assert letter.value_omitted and letter.value_bytes == len(value) and letter.error_type == "ValueError"
    again = await original_record(settings, letter)
    assert again.value == value and (again.partition, again.offset) == (rec.partition, rec.offset)


async def _all(settings: Settings, topic: str, n: int):  # type: ignore[no-untyped-def]
    records = await read_range(settings, topic, {}, await end_offsets(settings, topic))
    return records if len(records) >= n else None
