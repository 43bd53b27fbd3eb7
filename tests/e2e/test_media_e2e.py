"""End to end with media: Whapi webhooks (a voice note, two photos, a PDF) over HTTP -> ingest
-> normalize -> media (from the fake provider media server) -> transcribe / caption / extract
(against the fake OpenAI server) -> the messages projector and the media projector
(``python -m projections.media``) -> chat_media and chat_messages rows. Real broker, real
Postgres, every stage a real process. A second voice note with the same file costs no second
transcription."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from contracts.settings import Settings
from ingest.bootstrap import create_app
from msgmem.localstack.http_server import serving
from msgmem.localstack.processes import Child, env_with, file_sink
from msgmem.send import signed_headers
from msgmem.services import by_name
from tests.conftest import FIXTURES
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.provider_media import FakeProviderMedia, sha256_of
from tests.fakes.server import ThreadedServer
from tests.integration.test_ingest import CREDS, ingest_settings
from tests.services import running
from tests.waiting import eventually

pytestmark = pytest.mark.integration

WHAPI = FIXTURES / "webhooks" / "whapi"
VOICE, PHOTO, PDF = sha256_of("voice_note.ogg"), sha256_of("receipt_photo.jpg"), sha256_of("invoice_text.pdf")
TRANSCRIPT = "Hi, this is Dana Silva about order 4271."
DESCRIPTION = "A delivery receipt for order 4271, total 189.00 EUR."
READY = "projector started: chat_media"

ROWS = """
select m.provider_message_id, m.caption, m.caption_generated, m.transcript, m.extracted_text,
       c.status, c.sha256, c.caption as media_caption, c.transcript_model, c.page_count
from chat_messages m left join chat_media c on c.message_id = m.id
where m.provider_message_id = any($1::text[])
"""


def webhook(case: str, message_id: str, media: str, **changes: Any) -> bytes:
    """A Whapi fixture as a new message (``message_id``), its media object changed by ``changes``
    (a key set to None is removed)."""
    body = orjson.loads((WHAPI / f"{case}.json").read_bytes())
    message = body["messages"][0]
    message["id"] = message_id
    for key, value in changes.items():
        if value is None:
            message[media].pop(key, None)
        else:
            message[media][key] = value
    return orjson.dumps(body)


@contextmanager
def media_projector(settings: Settings, log_dir: Path, output: list[str]) -> Iterator[Child]:
    """``python -m projections.media`` as a process (not in msgmem.services yet)."""
    sink = file_sink(log_dir / "media-projector.log")

    def both(line: str) -> None:
        output.append(line)
        sink(line)

    child = Child("media-projector", [sys.executable, "-m", "projections.media"], ready_pattern=READY,
                  env=env_with(by_name("projector").env(settings)), cwd=log_dir, sink=both)  # fmt: skip
    child.start()
    try:
        child.wait_ready(90)
        yield child
    finally:
        child.stop()


async def test_media_webhooks_end_as_rows_with_their_text(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    await db.execute("truncate enrichment_cache")  # the first voice note must cost a call
    run = uuid.uuid4().hex[:8]
    ids = {name: f"{run}-{name}" for name in ("voice", "photo", "bare-photo", "pdf", "voice-again")}
    provider_media, openai = FakeProviderMedia(), FakeOpenAI()
    openai.transcripts[VOICE] = TRANSCRIPT
    openai.descriptions[PHOTO] = DESCRIPTION
    logs, output = tmp_path / "logs", []
    logs.mkdir()

    async def rows(expect: Any) -> dict[str, asyncpg.Record]:
        async def check() -> dict[str, asyncpg.Record] | None:
            found = {r["provider_message_id"]: r for r in await db.fetch(ROWS, list(ids.values()))}
            return found if expect(found) else None

        return await eventually(check, timeout=150, interval=0.5)

    with ExitStack() as stages:
        media_url = stages.enter_context(ThreadedServer(provider_media.app))
        openai_url = stages.enter_context(ThreadedServer(openai.app))
        store = {"MEDIA_LOCAL_DIR": str(tmp_path / "media")}
        enrich = store | {"OPENAI_API_KEY": openai.api_key, "OPENAI_BASE_URL": f"{openai_url}/v1"}
        fetch = store | {"WHAPI_API_URL": media_url, "WHAPI_API_TOKEN": provider_media.whapi_token,
                         "META_GRAPH_URL": media_url, "META_ACCESS_TOKEN": provider_media.meta_token,
                         "MEDIA_TRUSTED_ORIGINS": media_url,  # the fake: http on 127.0.0.1
                         "MEDIA_RETRY_MIN_SECONDS": "0.05", "MEDIA_RETRY_MAX_SECONDS": "0.2"}  # fmt: skip
        for name, env in (("normalize", {}), ("projector", {}), ("media", fetch), ("transcribe", enrich),
                          ("caption", enrich), ("extract", enrich)):  # fmt: skip
            stages.enter_context(running(name, settings, logs, **env))
        projector = stages.enter_context(media_projector(settings, logs, output))

        async with serving(create_app(ingest_settings(settings))) as url, httpx.AsyncClient(base_url=url) as client:

            async def post(body: bytes) -> None:
                r = await client.post("/webhooks/whapi", content=body, headers=signed_headers("whapi", body, CREDS))
                assert r.status_code == 200, r.text

            await post(webhook("voice", ids["voice"], "voice"))
            await post(webhook("image_with_caption", ids["photo"], "image"))
            await post(webhook("image_with_caption", ids["bare-photo"], "image", caption=None,
                               id="jpeg-5f60718293a4b5c6d7e8f9a0"))  # fmt: skip
            await post(webhook("document_pdf", ids["pdf"], "document"))
            first = await rows(lambda found: len(found) == 4 and all(
                r["status"] == "stored" and (r["transcript"] or r["media_caption"] or r["extracted_text"])
                for r in found.values()))  # fmt: skip
            await post(webhook("voice", ids["voice-again"], "voice", id="oga-60718293a4b5c6d7e8f9a0b1"))
            again = await rows(lambda found: len(found) == 5 and found[ids["voice-again"]]["transcript"] is not None)

        projector.stop()
        assert projector.returncode == 0, "\n".join(output[-40:])
        assert any("projector stopped" in line for line in output)

    voice, photo, bare, pdf = (first[ids[n]] for n in ("voice", "photo", "bare-photo", "pdf"))
    assert (voice["sha256"], voice["transcript"], voice["transcript_model"]) == (VOICE, TRANSCRIPT,
                                                                                 "gpt-4o-mini-transcribe")  # fmt: skip
    assert (photo["sha256"], photo["media_caption"]) == (PHOTO, DESCRIPTION)
    assert (photo["caption"], photo["caption_generated"]) == ("Here is the signed receipt", False)  # the sender's
    assert (bare["sha256"], bare["caption"], bare["caption_generated"]) == (PHOTO, DESCRIPTION, True)
    assert (pdf["sha256"], pdf["caption"], pdf["page_count"]) == (PDF, "Invoice attached", 2)
    assert "INVOICE 2026-0193" in pdf["extracted_text"]
    assert (again[ids["voice-again"]]["sha256"], again[ids["voice-again"]]["transcript"]) == (VOICE, TRANSCRIPT)
    voice_calls = [c for c in openai.calls("/v1/audio/transcriptions") if c.sha256 == VOICE]
    assert len(voice_calls) == 1  # the second voice note was a cache hit
