"""The log is the only writer, end to end: after a mixed run through every service, drop every
projected table's rows, rebuild them all from offset 0 and get the same rows, without a model call.

The run: every provider's every kind of webhook (texts, edits, deletions, statuses, reactions...)
and Whapi media (a voice note, a photo, a PDF) over HTTP into ingest, through normalize, media,
transcribe, caption, extract and embed, and the messages, media, embeddings and dead-letter
projectors, each a real process, against the fake provider media server and the fake OpenAI
server. Then a poison delivery is dead-lettered and retried by an operator until it goes
through, transcribe is replayed with a new model (one call: the new model's), a replay with
that model again costs nothing, and the retention sweep expires the stored files.

With the projectors stopped, every projected table and ``projection_offsets`` are emptied;
``msgmem projections rebuild`` (every projection) fills them again; each table's checksum
(every column but the clocks) equals the one taken before, and the fake OpenAI server saw
no call during the rebuild.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from contracts import media, processes, raw
from contracts.deadletter import letter_id
from contracts.settings import Settings
from ingest.bootstrap import create_app
from msgmem.dlq import load, retry
from msgmem.localstack.http_server import serving
from msgmem.replay import replay
from msgmem.send import signed_headers
from projections.rebuild.compare import checksum, columns
from projections.rebuild.run import rebuild
from projections.rebuild.targets import resolve
from runtime.kafka import end_offsets
from runtime.media_storage import LocalMediaStore
from streams.common.outputs import KafkaOutputs
from streams.media.sweep import sweep_expired
from streams.normalize import providers
from tests.conftest import PROJECTED_TABLES
from tests.e2e.test_media_e2e import PHOTO, VOICE, webhook
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.provider_media import FakeProviderMedia
from tests.fakes.server import ThreadedServer
from tests.integration.test_ingest import CREDS, ingest_settings
from tests.integration.test_ops_dlq_status import append_raw, unknown_provider_delivery
from tests.services import running
from tests.unit.normalize.test_kinds import KINDS, kind_bytes
from tests.waiting import eventually

pytestmark = pytest.mark.integration
T = TypeVar("T")

PROJECTORS = ("projector", "media_projector", "embeddings_projector", "deadletters_projector")
STAGES = ("normalize", "media", "transcribe", "caption", "extract", "embed")
NEW_MODEL = "whisper-large-v9"
TRANSCRIPT, BETTER = "Hi, this is Dana Silva about order 4271.", "Hi, this is Dana Silva about order 4271, twice."


async def until(fetch: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout: float = 90) -> T:
    """``fetch()`` once ``ok`` holds for its result."""
    async def check() -> T | None:
        found = await fetch()
        return found if ok(found) else None

    result = await eventually(check, timeout=timeout, interval=0.3)
    assert result is not None
    return result


async def caught_up(db: asyncpg.Connection, settings: Settings) -> None:
    """Until every projector has applied everything on its topics now."""
    for name in PROJECTORS:
        process = processes.by_name(name)
        for topic in process.inputs:
            end = {tp.partition: o for tp, o in (await end_offsets(settings, topic)).items() if o}

            async def applied(topic: str = topic, end: dict[int, int] = end, projection: str = process.projection
                              ) -> bool:  # fmt: skip
                stored = dict(await db.fetch(
                    "select partition, next_offset from projection_offsets where projection = $1 and topic = $2",
                    projection, topic))  # fmt: skip
                return all(stored.get(p, 0) >= o for p, o in end.items())

            await eventually(applied, timeout=120, interval=0.3)


async def checksums(settings: Settings, db: asyncpg.Connection) -> dict[str, tuple[int, str]]:
    """Every projected table's row count and checksum (clock columns left out), as the rebuild compares them."""
    out = {}
    for target in resolve(settings, None):
        for table in target.tables:
            found = await checksum(db, table, await columns(db, table, target.clock_columns))
            out[table] = (found.rows, found.checksum)
    return out


@contextmanager
def services(settings: Settings, logs: Path, names: tuple[str, ...], env: dict[str, dict[str, str]]) -> Iterator[None]:
    with ExitStack() as stack:
        for name in names:
            stack.enter_context(running(name, settings, logs, **env.get(name, {})))
        yield


async def test_every_table_rebuilt_from_the_log_equals_the_live_one_without_a_model_call(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await db.execute("truncate enrichment_cache")
    run = uuid.uuid4().hex[:8]
    provider_media, openai = FakeProviderMedia(), FakeOpenAI()
    openai.transcripts[VOICE] = TRANSCRIPT
    openai.descriptions[PHOTO] = "A delivery receipt for order 4271."
    logs = tmp_path / "logs"
    logs.mkdir()
    store = LocalMediaStore(tmp_path / "media", settings.media_bucket)  # the media stage's, by MEDIA_LOCAL_DIR

    with ExitStack() as outside:
        media_url = outside.enter_context(ThreadedServer(provider_media.app))
        openai_url = outside.enter_context(ThreadedServer(openai.app))
        ai = {"OPENAI_API_KEY": openai.api_key, "OPENAI_BASE_URL": f"{openai_url}/v1", "EMBEDDINGS_BATCH_WAIT_MS": "50"}
        files = {"MEDIA_LOCAL_DIR": str(store.root)}
        env = {name: files | ai for name in ("transcribe", "caption", "extract", "embed")} | {"media": files | {
            "WHAPI_API_URL": media_url, "WHAPI_API_TOKEN": provider_media.whapi_token, "MEDIA_TRUSTED_ORIGINS": media_url,
            "MEDIA_RETRY_MIN_SECONDS": "0.05", "MEDIA_RETRY_MAX_SECONDS": "0.2"}}  # fmt: skip
        live = settings.model_copy(update={
            "openai_api_key": SecretStr(openai.api_key), "openai_base_url": f"{openai_url}/v1",
            "media_local_dir": store.root,
        })  # fmt: skip

        with services(settings, logs, STAGES, env), services(settings, logs, PROJECTORS, env):
            # 1. Every kind of every provider, and media with their enrichments.
            async with serving(create_app(ingest_settings(settings))) as url, httpx.AsyncClient(base_url=url) as client:
                bodies = [(p, kind_bytes(p, k).replace(b"KIND-", f"KIND{run}-".encode())) for p, ks in KINDS.items()
                          for k in ks]  # fmt: skip
                bodies += [("whapi", webhook("voice", f"{run}-voice", "voice")),
                           ("whapi", webhook("image_with_caption", f"{run}-photo", "image")),
                           ("whapi", webhook("document_pdf", f"{run}-pdf", "document"))]  # fmt: skip
                for provider, body in bodies:
                    r = await client.post(f"/webhooks/{provider}", content=body,
                                          headers=signed_headers(provider, body, CREDS))  # fmt: skip
                    assert r.status_code == 200, (provider, r.text)
            enriched = await until(lambda: db.fetch(
                "select transcript, caption, extracted_text from chat_media where status = 'stored'"
                " and coalesce(transcript, caption, extracted_text) is not null"), lambda rows: len(rows) == 3,
                timeout=150)  # fmt: skip
            assert TRANSCRIPT in {r["transcript"] for r in enriched}

            # 2. A poison delivery: dead-lettered, retried in vain, then retried after the fix.
            delivery = unknown_provider_delivery()
            at = await append_raw(settings, delivery)
            poison = letter_id(processes.NORMALIZE.name, raw.TOPIC, at.partition, at.offset)
            await until(lambda: db.fetchval("select state from dead_letters where letter_id = $1", poison),
                        lambda state: state == "open")  # fmt: skip
            [item] = [x for x in (await load(settings)).values() if x.letter.dead_letter_id == poison]
            assert not (await retry(settings, [item], by="dana"))[0].ok
            monkeypatch.setitem(providers.NORMALISERS, "waha", providers.NORMALISERS["whapi"])
            assert (await retry(settings, [item], by="sam"))[0].ok

            # 3. Transcribe again with a new model: one call, that model's; again: none (cached).
            openai.transcripts[VOICE] = BETTER
            before = len(openai.calls("/v1/audio/transcriptions"))
            better = live.model_copy(update={"transcription_model": NEW_MODEL})
            for _ in range(2):
                await replay(better, "transcribe", start=None, until=None, progress=False)
            paid = openai.calls("/v1/audio/transcriptions")[before:]
            assert [(c.model, c.sha256) for c in paid] == [(NEW_MODEL, VOICE)]
            await until(lambda: db.fetchval("select transcript from chat_media where sha256 = $1", VOICE),
                        lambda text: text == BETTER)  # fmt: skip

            # 4. The retention sweep, a year from now: every stored file expires (MediaExpired events).
            outputs = await KafkaOutputs.start(settings)
            try:
                swept = await sweep_expired(db, store, outputs, now=datetime.now(UTC) + timedelta(days=365))
            finally:
                await outputs.stop()
            assert swept.rows_expired == 3
            await until(lambda: db.fetchval("select count(*) from chat_media where status = 'expired'"),
                        lambda n: n == 3)  # fmt: skip
            await caught_up(db, settings)
            assert await db.fetchval("select count(*) from message_embeddings") > 0
            assert await db.fetchval("select state from dead_letters where letter_id = $1", poison) == "resolved"

        # 5. Projectors and stages stopped: drop every row, rebuild everything from offset 0.
        live_sums = await checksums(settings, db)
        assert all(live_sums[t][0] for t in ("chats", "chat_messages", "chat_message_versions", "chat_media",
                                             "message_embeddings", "dead_letters")), live_sums  # fmt: skip
        await db.execute(f"truncate {', '.join(PROJECTED_TABLES)}")
        calls = len(openai.calls())
        report = await rebuild(live, progress=False, workers=1)
        assert all(p.swapped for p in report.projections), [p.reason for p in report.projections]
        assert await checksums(settings, db) == live_sums
        assert len(openai.calls()) == calls  # the rebuild paid for nothing: vectors and texts are on the log
        assert await db.fetchval("select count(*) from chat_media where status = 'expired'") == 3
        assert media.TOPIC in {r["topic"] for r in await db.fetch("select topic from projection_offsets")}  # declared names
