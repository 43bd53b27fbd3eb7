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

    summary = await export(live, "phone", f"+{PHONE}", tmp_path / "out")

    assert (summary.chats, summary.messages, summary.files) == (2, 2, 1)
    document = orjson.loads(summary.path.read_bytes())
    assert sorted(c["chat"]["chat_key"] for c in document["chats"]) == sorted(ERASED)
    first = next(c for c in document["chats"] if c["chat"]["chat_key"] == ERASED[0])
    [message] = first["messages"]
    assert message["body"] == "hello" and [v["text"] for v in message["versions"]] == ["hello"]
    [row] = first["media"]
    assert row["sha256"] == sha(voice) and (tmp_path / "out" / row["exported_file"]).read_bytes() == voice.encode()
    assert KEPT not in summary.path.read_text() and not list((tmp_path / "out" / "files").glob(f"{sha(other)}*"))
