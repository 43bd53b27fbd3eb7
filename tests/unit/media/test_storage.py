"""One contract suite for both media stores: the local folder and Supabase Storage (through the
supabase client, against the fake Storage API on a real socket)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from msgmem.localstack.http_server import serving
from runtime.media_storage import LocalMediaStore, MediaStore, SupabaseMediaStore, verify_local_signature
from tests.fakes.supabase_storage import FakeSupabaseStorage

PATH = "ab/cd/abcdef.ogg"
DATA = b"OggS" + bytes(range(256)) * 40


@pytest.fixture(params=["local", "supabase"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MediaStore]:
    if request.param == "local":
        yield LocalMediaStore(tmp_path / "media", "chat-media", signing_key=b"k" * 32, url_base="https://files.test/media")
        return
    fake = FakeSupabaseStorage()
    async with serving(fake.app) as url:
        s = await SupabaseMediaStore.connect(url, fake.service_key, "chat-media", tmp_path / "staging")
        s.fake = fake  # type: ignore[attr-defined]
        yield s


def staged(store: MediaStore, data: bytes = DATA) -> Path:
    path = store.staging_dir / f"{uuid.uuid4()}.part"
    path.write_bytes(data)
    return path


async def test_put_size_read_delete(store: MediaStore) -> None:
    assert await store.size(PATH) is None
    source = staged(store)
    assert await store.put(PATH, source, "audio/ogg") is True
    assert not source.exists()  # taken over
    assert await store.size(PATH) == len(DATA)
    assert await store.read(PATH) == DATA
    await store.delete([PATH, "no/such/object"])
    assert await store.size(PATH) is None


async def test_put_of_an_existing_path_keeps_the_object(store: MediaStore) -> None:
    await store.put(PATH, staged(store), "audio/ogg")
    again = staged(store, b"same path, so the same content in a content-addressed store")
    assert await store.put(PATH, again, "audio/ogg") is False
    assert not again.exists() and await store.read(PATH) == DATA


async def test_signed_urls_give_the_object_for_a_while(store: MediaStore) -> None:
    await store.put(PATH, staged(store), "audio/ogg")
    url = await store.signed_url(PATH, 60)
    if isinstance(store, LocalMediaStore):
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert parts.path == f"/media/{PATH}"
        assert verify_local_signature(PATH, int(query["expires"]), query["signature"], b"k" * 32)
        assert not verify_local_signature(PATH, int(query["expires"]), query["signature"], b"x" * 32)
        assert not verify_local_signature(PATH, int(query["expires"]), query["signature"], b"k" * 32, now=time.time() + 61)
    else:
        async with httpx.AsyncClient() as client:
            response = await client.get(url)
        assert response.status_code == 200 and response.content == DATA


async def test_supabase_bucket_is_private_and_uploads_carry_the_content_type(tmp_path: Path) -> None:
    fake = FakeSupabaseStorage()
    async with serving(fake.app) as url:
        store = await SupabaseMediaStore.connect(url, fake.service_key, "media-private", tmp_path)
        await store.put(PATH, staged(store), "audio/ogg; codecs=opus")
    assert fake.buckets["media-private"]["public"] is False
    assert fake.objects[("media-private", PATH)].content_type == "audio/ogg; codecs=opus"


async def test_a_public_supabase_bucket_is_refused(tmp_path: Path) -> None:
    fake = FakeSupabaseStorage()
    fake.buckets["open"] = {"id": "open", "name": "open", "owner": "", "public": True, "created_at": "2026-01-01T00:00:00Z",
                            "updated_at": "2026-01-01T00:00:00Z", "file_size_limit": None, "allowed_mime_types": None}
    async with serving(fake.app) as url:
        with pytest.raises(RuntimeError, match="public"):
            await SupabaseMediaStore.connect(url, fake.service_key, "open", tmp_path)


async def test_local_paths_cannot_escape_the_store(tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path / "media", "chat-media")
    with pytest.raises(ValueError):
        await store.size("../../etc/passwd")
    assert (await store.signed_url("ab/x", 5)).startswith("file://")  # no key: a developer's file URI
