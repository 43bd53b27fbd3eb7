"""Erasure against the real broker and Postgres: `msgmem erase` / POST /admin/erasures append an
ErasureRequested to wa.erasures, the erasures projector removes every row about the contact (all
its chats), its media files no other chat uses, and the AI results cached only for them, and
writes the erasures row the request waits for; the receipt holds counts, no personal data.
Another contact, and a file both sent, stay."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from contracts import processes
from contracts.settings import Settings
from projections.consumer import running_projector
from projections.erasures.main import PROJECTOR
from projections.recall.app import create_app
from runtime.erasures import erase
from tests.integration.test_projector import FAST

pytestmark = pytest.mark.integration

PHONE = "15550001111"
ERASED = (f"whapi:100:{PHONE}@s.whatsapp.net", f"meta:200:{PHONE}")  # one contact, two chats
KEPT = "whapi:100:15550002222@s.whatsapp.net"
ADMIN_KEY = "admin-key-" + "k" * 30


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def seed_chat(db: asyncpg.Connection, media: Path, chat: str, phone: str | None, files: list[str]) -> None:
    """One chat as the projectors leave it: a message with a version, an edit still pending, an
    embedding and its source row, a dead letter keyed by the chat, and a stored file per name."""
    provider, channel, chat_id = chat.split(":", 2)
    msg = f"m-{uuid.uuid4().hex[:8]}"
    await db.execute("insert into chats (chat_key, provider, channel_id, chat_id, contact_phone) values ($1,$2,$3,$4,$5)",
                     chat, provider, channel, chat_id, phone)  # fmt: skip
    await db.execute(
        "insert into chat_messages (id, chat_key, provider, channel_id, provider_message_id, origin, direction,"
        " message_type, body, provider_timestamp, received_at) values ($1,$2,$3,$4,$1,'user','inbound','voice',"
        " 'hello', now(), now())", msg, chat, provider, channel)  # fmt: skip
    await db.execute("insert into chat_message_versions (message_id, event_id, kind, text, version_at, source_topic,"
                     " source_partition, source_offset) values ($1, $1, 'original', 'hello', now(), 'wa.messages', 0, 1)",
                     msg)  # fmt: skip
    await db.execute("insert into chat_message_pending (message_id, chat_key) values ($1, $2)", f"{msg}-later", chat)
    await db.execute(
        "insert into message_embeddings (message_id, chunk_index, chat_key, chunk_text, start_token, end_token,"
        " chunk_count, embedding, model) values ($1, 0, $2, 'hello', 0, 1, 1,"
        " array_fill(0.1::real, array[1536])::vector, 'm')", msg, chat)  # fmt: skip
    await db.execute(
        "insert into message_embedding_sources (message_id, source, chat_key, version_at, event_id, text_sha256,"
        " token_count, chunk_count, model) values ($1, 'text', $2, now(), $1, 'x', 1, 1, 'm')", msg, chat)  # fmt: skip
    await db.execute(
        "insert into dead_letters (letter_id, stage, state, error_type, error, attempts, failures, source_topic,"
        " source_partition, source_offset, key, first_seen, last_seen, applied_offset) values"
        " ($1, 'media', 'open', 'E', 'e', 1, 1, 'wa.messages', 0, 1, $2, now(), now(), 0)", f"media:{msg}", chat)  # fmt: skip
    for name in files:
        digest = sha(name)
        path = f"{digest[:2]}/{digest[2:4]}/{digest}.ogg"
        (media / path).parent.mkdir(parents=True, exist_ok=True)
        (media / path).write_bytes(name.encode())
        await db.execute("insert into chat_media (id, message_id, chat_key, kind, sha256, bucket, path, status)"
                         " values ($1, $2, $3, 'voice', $4, 'media', $5, 'stored')",
                         f"{msg}-{name}", msg, chat, digest, path)  # fmt: skip
        await db.execute("insert into enrichment_cache (sha256, stage, model, result) values ($1, 'transcribe', 'w',"
                         " '{}'::jsonb) on conflict do nothing", digest)  # fmt: skip


async def rows_of(db: asyncpg.Connection, chat: str) -> dict[str, int]:
    tables = ("chats", "chat_messages", "chat_message_pending", "chat_media", "message_embeddings",
              "message_embedding_sources")  # fmt: skip
    counts = {t: await db.fetchval(f"select count(*) from {t} where chat_key = $1", chat) for t in tables}
    counts["dead_letters"] = await db.fetchval("select count(*) from dead_letters where key = $1", chat)
    return counts


async def test_erasing_a_phone_removes_every_chat_of_it_and_its_own_files_only(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    live = settings.model_copy(update={"media_local_dir": media, "projector_batch_timeout_ms": 50})
    own, shared, other = f"own-{uuid.uuid4()}", f"shared-{uuid.uuid4()}", f"other-{uuid.uuid4()}"
    await seed_chat(db, media, ERASED[0], None, [own, shared])
    await seed_chat(db, media, ERASED[1], PHONE, [])
    await seed_chat(db, media, KEPT, "15550002222", [shared, other])
    before_kept = await rows_of(db, KEPT)

    async with running_projector(live, PROJECTOR, group=f"test-{uuid.uuid4().hex[:8]}", policy=FAST):
        receipt = await erase(live, "phone", "+1 555 000 1111", by="dana", reason="GDPR art. 17 request",
                              timeout=60)  # fmt: skip

    assert receipt.chats == 2
    tables = receipt.removed["tables"]
    assert (tables["chats"], tables["chat_messages"], tables["chat_message_versions"], tables["chat_media"]) == (2, 2, 2, 2)
    assert (tables["message_embeddings"], tables["dead_letters"], tables["enrichment_cache"]) == (2, 2, 1)
    assert receipt.removed["storage"] == {"local": 1}
    for chat in ERASED:
        assert set((await rows_of(db, chat)).values()) == {0}
    assert await rows_of(db, KEPT) == before_kept
    assert sorted(p.stem for p in media.rglob("*.ogg")) == sorted([sha(shared), sha(other)])
    cached = {r["sha256"] for r in await db.fetch("select sha256 from enrichment_cache where sha256 = any($1::text[])",
                                                  [sha(own), sha(shared), sha(other)])}  # fmt: skip
    assert cached == {sha(shared), sha(other)}
    printed = json.dumps(receipt.to_json())
    assert PHONE not in printed and "whapi" not in printed and "GDPR" not in printed
    ledger = await db.fetchrow("select * from erasures where erasure_id = $1", receipt.erasure_id)
    assert ledger["subject_kind"] == "phone" and PHONE not in ledger["subject_hash"]


async def test_the_admin_route_wants_its_own_key_then_erases_a_chat(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    live = settings.model_copy(update={"media_local_dir": media, "projector_batch_timeout_ms": 50,
                                       "admin_api_key": SecretStr(ADMIN_KEY), "recall_api_key": SecretStr("r" * 40)})
    await seed_chat(db, media, KEPT, None, [])
    app = create_app(live, embedder=None)
    async with running_projector(live, PROJECTOR, group=f"test-{uuid.uuid4().hex[:8]}", policy=FAST), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://recall") as client:  # fmt: skip
        body = {"chat": KEPT}
        for headers in ({}, {"Authorization": f"Bearer {'r' * 40}"}, {"X-API-Key": ADMIN_KEY + "x"}):
            refused = await client.post("/admin/erasures", json=body, headers=headers)
            assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
        assert await db.fetchval("select count(*) from chats where chat_key = $1", KEPT) == 1
        wrong = await client.post("/admin/erasures", json={"chat": KEPT, "phone": PHONE}, headers={"X-API-Key": ADMIN_KEY})
        assert wrong.status_code == 422 and PHONE not in wrong.text and KEPT not in wrong.text
        done = await client.post("/admin/erasures", json=body, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert done.status_code == 200, done.text
    answer = done.json()
    assert answer["status"] == "completed" and answer["chats"] == 1 and answer["removed"]["tables"]["chats"] == 1
    assert "15550002222" not in done.text
    assert set((await rows_of(db, KEPT)).values()) == {0}


async def test_msgmem_erase_prints_counts_and_a_receipt(settings: Settings, db: asyncpg.Connection, tmp_path: Path) -> None:
    media = tmp_path / "media"
    live = settings.model_copy(update={"media_local_dir": media, "projector_batch_timeout_ms": 50})
    await seed_chat(db, media, ERASED[1], PHONE, [])
    env = processes.ERASURES_PROJECTOR.env(live) | {"MEDIA_LOCAL_DIR": str(media), "PATH": "/usr/bin:/bin"}
    async with running_projector(live, PROJECTOR, group=f"test-{uuid.uuid4().hex[:8]}", policy=FAST):
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "msgmem", "erase", "--chat", ERASED[1], "--by", "dana"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "erased 1 chat(s)" in done.stdout and "chat_messages" in done.stdout and "local storage" in done.stdout
    receipt = json.loads(done.stdout[done.stdout.index("{"):])
    assert receipt["removed"]["tables"]["chats"] == 1 and PHONE not in done.stdout and PHONE not in done.stderr
