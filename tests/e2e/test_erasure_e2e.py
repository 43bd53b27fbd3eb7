"""Nothing comes back, end to end: a contact's texts and voice note go through every service
(fake provider media, fake OpenAI); `erase --phone` removes every row and the file; then every
stage replayed from offset 0 and every projection rebuilt from offset 0 leave the contact absent,
and the fake OpenAI server sees no call; a new message from the same number after the erasure
is a new history of one message."""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest
from pydantic import SecretStr

from contracts.settings import Settings
from ingest.bootstrap import create_app
from msgmem.localstack.http_server import serving
from msgmem.replay import replay
from msgmem.send import signed_headers
from projections.rebuild.run import rebuild
from runtime.erasures import erase
from runtime.media_storage import LocalMediaStore
from tests.conftest import FIXTURES, PROJECTED_TABLES
from tests.e2e.test_media_e2e import VOICE, webhook
from tests.e2e.test_rebuild_everything import PROJECTORS, STAGES, caught_up, services, until
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.provider_media import FakeProviderMedia
from tests.fakes.server import ThreadedServer
from tests.integration.test_ingest import CREDS, ingest_settings

pytestmark = pytest.mark.integration

PHONE = "15550001234"  # the Whapi fixtures' contact
TABLES = ("chats", "chat_messages", "chat_media", "message_embeddings", "message_embedding_sources")


def text(message_id: str, body: str) -> bytes:
    payload = orjson.loads((FIXTURES / "webhooks" / "whapi" / "text.json").read_bytes())
    payload["messages"][0]["id"], payload["messages"][0]["text"]["body"] = message_id, body
    return orjson.dumps(payload)


async def about_contact(db: asyncpg.Connection) -> dict[str, int]:
    """Rows per table (the contact's chat is the only one this test writes)."""
    return {t: await db.fetchval(f"select count(*) from {t}") for t in (*TABLES, "chat_message_versions")}


async def test_an_erased_contact_stays_erased_through_replays_and_rebuilds_and_may_write_again(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    await db.execute("truncate enrichment_cache")
    run = uuid.uuid4().hex[:8]
    provider_media, openai = FakeProviderMedia(), FakeOpenAI()
    openai.transcripts[VOICE] = "Please call me back about the invoice."
    logs = tmp_path / "logs"
    logs.mkdir()
    store = LocalMediaStore(tmp_path / "media", settings.media_bucket)

    async def post(client: httpx.AsyncClient, body: bytes) -> None:
        r = await client.post("/webhooks/whapi", content=body, headers=signed_headers("whapi", body, CREDS))
        assert r.status_code == 200, r.text

    with ExitStack() as outside:
        media_url = outside.enter_context(ThreadedServer(provider_media.app))
        openai_url = outside.enter_context(ThreadedServer(openai.app))
        ai = {"OPENAI_API_KEY": openai.api_key, "OPENAI_BASE_URL": f"{openai_url}/v1", "EMBEDDINGS_BATCH_WAIT_MS": "50"}
        files = {"MEDIA_LOCAL_DIR": str(store.root)}
        env = {name: files | ai for name in ("transcribe", "caption", "extract", "embed", "erasures_projector")} | {
            "media": files | {"WHAPI_API_URL": media_url, "WHAPI_API_TOKEN": provider_media.whapi_token,
                              "MEDIA_TRUSTED_ORIGINS": media_url}}  # fmt: skip
        live = settings.model_copy(update={
            "openai_api_key": SecretStr(openai.api_key), "openai_base_url": f"{openai_url}/v1",
            "media_local_dir": store.root, "whapi_api_url": media_url,
            "whapi_api_token": SecretStr(provider_media.whapi_token), "media_trusted_origins": [media_url],
        })  # fmt: skip
        projectors = (*PROJECTORS, "erasures_projector")
        with services(settings, logs, STAGES, env), services(settings, logs, projectors, env):
            async with serving(create_app(ingest_settings(settings))) as url, httpx.AsyncClient(base_url=url) as client:
                await post(client, text(f"{run}-t1", "My account number is 4471"))
                await post(client, text(f"{run}-t2", "and my address is 1 Elm Street"))
                await post(client, webhook("voice", f"{run}-voice", "voice"))
                await until(lambda: db.fetchval("select transcript from chat_media where sha256 = $1", VOICE),
                            lambda t: t is not None, timeout=150)  # fmt: skip
                await until(lambda: db.fetchval("select count(distinct message_id) from message_embeddings"),
                            lambda n: n == 3, timeout=120)  # fmt: skip
                assert list(store.root.rglob(f"{VOICE}*"))

                receipt = await erase(live, "phone", f"+{PHONE}", by="dana", timeout=60)
                assert receipt.chats == 1 and receipt.removed["tables"]["chat_messages"] == 3
                assert receipt.removed["storage"] == {"local": 1} and PHONE not in str(receipt.to_json())
                assert set((await about_contact(db)).values()) == {0}
                assert not list(store.root.rglob(f"{VOICE}*"))
                assert await db.fetchval("select count(*) from enrichment_cache where sha256 = $1", VOICE) == 0

                # Every stage again from offset 0: nothing is paid for, nothing comes back.
                calls = len(openai.calls())
                for stage in STAGES:
                    await replay(live, stage, start=None, until=None, progress=False)
                await caught_up(db, settings)
                assert len(openai.calls()) == calls, [c.path for c in openai.calls()[calls:]]
                assert set((await about_contact(db)).values()) == {0}

                # A new message from the same number after the erasure: a new history.
                await post(client, text(f"{run}-t3", "Hello again"))
                await until(lambda: db.fetchval("select count(*) from chat_messages where chat_key like $1",
                                                f"%{PHONE}%"), lambda n: n == 1)  # fmt: skip
                await until(lambda: db.fetchval("select count(*) from message_embeddings where chat_key like $1",
                                                f"%{PHONE}%"), lambda n: n == 1)  # fmt: skip
                await caught_up(db, settings)
        assert [r["body"] for r in await db.fetch("select body from chat_messages")] == ["Hello again"]

        # Every projection rebuilt from offset 0, the erasure ledger kept: still only the new history.
        calls = len(openai.calls())
        await db.execute(f"truncate {', '.join(t for t in PROJECTED_TABLES if t != 'erasures')}")
        report = await rebuild(live, progress=False, workers=1)
        assert all(p.swapped for p in report.projections), [p.reason for p in report.projections]
        assert len(openai.calls()) == calls
        assert [r["body"] for r in await db.fetch("select body from chat_messages")] == ["Hello again"]
        assert await db.fetchval("select count(*) from chat_media") == 0
        assert await db.fetchval("select count(*) from message_embeddings") == 1
