"""`msgmem export` against real Postgres and a local media store: every chat of a phone number,
its messages with their versions, media rows and files, and nothing of another contact."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import orjson
import pytest

from contracts.settings import Settings
from msgmem.export import export
from tests.integration.test_erasure import ERASED, KEPT, PHONE, seed_chat, sha
from tests.integration.test_projector import produce
from tests.unit.projections.factory import Chat

pytestmark = pytest.mark.integration


async def test_exporting_a_phone_writes_each_of_its_chats_and_their_files(
    settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    live = settings.model_copy(update={"media_local_dir": media})
    voice, other = f"voice-{uuid.uuid4()}", f"other-{uuid.uuid4()}"
    await seed_chat(db, media, ERASED[0], None, [voice])
    await seed_chat(db, media, ERASED[1], PHONE, [])
    await seed_chat(db, media, KEPT, "15550002222", [other])

    meta, kept = Chat(provider="meta", channel="200", chat_id=PHONE), Chat(channel="100", chat_id="15550002222@s.whatsapp.net")
    assert (meta.key, kept.key) == (ERASED[1], KEPT)
    await produce(live, [meta.received("c0", t=0), meta.consent("c1", "opted_out", 10), kept.consent("k1", "opted_out", 11),
                         meta.consent("c2", "opted_in", 20, keyword="START")])  # fmt: skip

    summary = await export(live, "phone", f"+{PHONE}", tmp_path / "out")

    assert (summary.chats, summary.messages, summary.files) == (2, 2, 1)
    document = orjson.loads(summary.path.read_bytes())
    assert sorted(c["chat"]["chat_key"] for c in document["chats"]) == sorted(ERASED)
    first = next(c for c in document["chats"] if c["chat"]["chat_key"] == ERASED[0])
    [message] = first["messages"]
    assert message["body"] == "hello" and [v["text"] for v in message["versions"]] == ["hello"]
    [row] = first["media"]
    assert row["sha256"] == sha(voice) and (tmp_path / "out" / row["exported_file"]).read_bytes() == voice.encode()
    consent = next(c for c in document["chats"] if c["chat"]["chat_key"] == ERASED[1])["consent_history"]
    assert [(c["state"], c["keyword"]) for c in consent] == [("opted_out", "STOP"), ("opted_in", "START")]
    assert first["consent_history"] == []
    assert KEPT not in summary.path.read_text() and not list((tmp_path / "out" / "files").glob(f"{sha(other)}*"))
