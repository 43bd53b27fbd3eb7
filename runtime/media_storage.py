"""Where media files live: the ``MediaStore`` port, a local-folder adapter (the embedded
default) and a Supabase Storage adapter (a private bucket, through the supabase client).

Paths are content-addressed (``streams.media.logic.content_path``), so ``put`` of a path
that exists is a no-op: same path, same bytes. Callers never get a public URL, only
``signed_url(path, expires_in)``:

- Supabase: Storage's own signed URL (``create_signed_url``).
- Local: ``{MEDIA_LOCAL_URL_BASE}/{path}?expires=<unix>&signature=<hex>``, where the
  signature is HMAC-SHA256 over ``"{path}\\n{expires}"`` with MEDIA_SIGNING_KEY; whatever
  serves the folder checks it with :func:`verify_local_signature`. Without a key or a base
  URL (a developer's machine) it is the file's ``file://`` URI: there is no one to sign for.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import quote

import httpcore
import httpx

from contracts.errors import SafeError, describe_error
from contracts.settings import Settings
from runtime.private import private_dir


class StorageError(SafeError):
    """The store failed in a way worth retrying (network, 5xx)."""


class MediaStore(Protocol):
    """A bucket of content-addressed media objects."""

    backend: Literal["local", "supabase"]
    bucket: str

    @property
    def staging_dir(self) -> Path:
        """Where downloads are spooled before ``put``; on the store's own disk when that makes ``put`` a rename."""

    async def put(self, path: str, source: Path, content_type: str) -> bool:
        """Store the file at ``source`` (taking it over: it is moved or deleted) under ``path``;
        False when the object was already there (and is kept as it is)."""

    async def size(self, path: str) -> int | None:
        """The object's size in bytes, or None when it is not there."""

    async def read(self, path: str) -> bytes:
        """The whole object (callers check the size first)."""

    async def delete(self, paths: Sequence[str]) -> None:
        """Remove the objects; missing ones are fine."""

    async def signed_url(self, path: str, expires_in: int) -> str:
        """A URL that gives the object to whoever holds it for ``expires_in`` seconds."""

    async def aclose(self) -> None:
        """Release the store's client, if it has one."""


def sign_local(path: str, expires: int, key: bytes) -> str:
    return hmac.new(key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


def local_signed_url(url_base: str, path: str, expires: int, key: bytes) -> str:
    """``{url_base}/{path}?expires=<unix>&signature=<hex>``: what ``verify_local_signature`` accepts."""
    return f"{url_base.rstrip('/')}/{quote(path)}?expires={expires}&signature={sign_local(path, expires, key)}"


def local_file(root: Path, path: str) -> Path:
    """The file of object ``path`` under ``root``; ``ValueError`` for a path that leaves it (or the staging area)."""
    target = (root / path).resolve()
    if root.resolve() not in target.parents or path.startswith(".staging"):
        raise ValueError(f"object path escapes the store: {path!r}")
    return target


def verify_local_signature(path: str, expires: int, signature: str, key: bytes, *, now: float | None = None) -> bool:
    """True when ``signature`` was made by :func:`sign_local` with ``key`` and has not expired."""
    if (now if now is not None else time.time()) > expires:
        return False
    return hmac.compare_digest(sign_local(path, expires, key), signature)


class LocalMediaStore:
    backend: Literal["local"] = "local"

    def __init__(self, root: Path, bucket: str, *, signing_key: bytes | None = None, url_base: str | None = None) -> None:
        self.root = root
        self.bucket = bucket
        self._key = signing_key
        self._url_base = url_base.rstrip("/") if url_base else None
        private_dir(root / ".staging")

    @property
    def staging_dir(self) -> Path:
        return self.root / ".staging"

    def _file(self, path: str) -> Path:
        return local_file(self.root, path)

    async def put(self, path: str, source: Path, content_type: str) -> bool:
        return await asyncio.to_thread(self._put, self._file(path), source)

    @staticmethod
    def _put(target: Path, source: Path) -> bool:
        if target.exists():
            source.unlink(missing_ok=True)
            return False
        private_dir(target.parent)
        try:
            os.replace(source, target)  # atomic on one filesystem: readers never see half a file
        except OSError:
            shutil.move(source, target)
        return True

    async def size(self, path: str) -> int | None:
        try:
            return (await asyncio.to_thread(self._file(path).stat)).st_size
        except FileNotFoundError:
            return None

    async def read(self, path: str) -> bytes:
        return await asyncio.to_thread(self._file(path).read_bytes)

    async def delete(self, paths: Sequence[str]) -> None:
        for path in paths:
            await asyncio.to_thread(self._file(path).unlink, True)

    async def signed_url(self, path: str, expires_in: int) -> str:
        if self._key is None or self._url_base is None:
            return self._file(path).as_uri()
        return local_signed_url(self._url_base, path, int(time.time()) + expires_in, self._key)

    async def aclose(self) -> None:
        return None


class SupabaseMediaStore:
    """Supabase Storage through the official client. Uploads always carry the content type
    (Storage would default to text/plain) and never overwrite (content-addressed)."""

    backend: Literal["supabase"] = "supabase"

    def __init__(self, client: Any, bucket: str, staging_dir: Path, http: httpx.AsyncClient | None = None) -> None:
        self._client = client
        self._http = http
        self._bucket = client.storage.from_(bucket)
        self.bucket = bucket
        self._staging = staging_dir
        private_dir(staging_dir)

    @classmethod
    async def connect(
        cls, url: str, service_key: str, bucket: str, staging_dir: Path, *, timeout: float = 60.0,
        create_bucket: bool = True,
    ) -> "SupabaseMediaStore":  # fmt: skip
        """``create_bucket=False``: a reader (the recall API signs URLs) that must not create the bucket."""
        from supabase import AsyncClientOptions, acreate_client  # only needed when this backend is chosen

        http = httpx.AsyncClient(timeout=timeout)
        client = await acreate_client(url, service_key, options=AsyncClientOptions(httpx_client=http))
        store = cls(client, bucket, staging_dir, http)
        try:
            if create_bucket:
                await store.ensure_bucket()
        except BaseException:
            await http.aclose()
            raise
        return store

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    @property
    def staging_dir(self) -> Path:
        return self._staging

    async def ensure_bucket(self) -> None:
        """Create the bucket, private, when it does not exist; refuse to run on a public one."""
        from storage3.exceptions import StorageApiError

        try:
            found = await self._client.storage.get_bucket(self.bucket)
        except StorageApiError as exc:
            if str(exc.status) not in ("400", "404"):
                raise
            await self._client.storage.create_bucket(self.bucket, options={"public": False})
            return
        if getattr(found, "public", False):
            raise RuntimeError(f"Supabase bucket {self.bucket!r} is public; media must be in a private bucket")

    async def put(self, path: str, source: Path, content_type: str) -> bool:
        from storage3.exceptions import StorageApiError

        try:
            with source.open("rb") as fh, transport_errors():  # httpx streams the file in chunks: never read whole
                await self._bucket.upload(path, fh, {"content-type": content_type, "upsert": "false"})
            return True
        except StorageApiError as exc:
            if str(exc.status) != "409":  # 409: already there, and content-addressed, so the same bytes
                raise _storage_error(exc) from exc
            return False
        finally:
            source.unlink(missing_ok=True)

    async def size(self, path: str) -> int | None:
        from storage3.exceptions import StorageApiError

        try:
            with transport_errors():
                info = await self._bucket.info(path)
        except StorageApiError as exc:
            if str(exc.status) == "404":
                return None
            raise _storage_error(exc) from exc
        size = info.get("size") if isinstance(info, dict) else None
        if size is None and isinstance(info, dict):
            size = (info.get("metadata") or {}).get("size")
        return int(size) if size is not None else 0

    async def read(self, path: str) -> bytes:
        from storage3.exceptions import StorageApiError

        try:
            with transport_errors():
                return await self._bucket.download(path)
        except StorageApiError as exc:
            if str(exc.status) in ("400", "404"):  # Supabase Storage: object not found
                raise FileNotFoundError(path) from exc
            raise _storage_error(exc) from exc

    async def delete(self, paths: Sequence[str]) -> None:
        if paths:
            with transport_errors():
                await self._bucket.remove(list(paths))

    async def signed_url(self, path: str, expires_in: int) -> str:
        signed = await self._bucket.create_signed_url(path, expires_in)
        return signed["signedURL"]


@contextmanager
def transport_errors() -> Iterator[None]:
    """The store's network failures (the SDK's httpx, or httpcore under it) as ``StorageError``:
    classified here, where they are raised, so callers catch one type."""
    try:
        yield
    except (httpx.TransportError, httpcore.NetworkError, httpcore.TimeoutException, httpcore.ProtocolError) as exc:
        raise StorageError(f"storage unreachable: {describe_error(exc)}") from exc


def _storage_error(exc: Any) -> Exception:
    status = str(getattr(exc, "status", ""))
    return StorageError(f"storage answered {status or 'no status'}: {describe_error(exc)}") if status.startswith("5") or not status else exc


async def build_store(settings: Settings, *, create_bucket: bool = True) -> MediaStore:
    """The store ``settings`` choose; call from a composition root (it may open a client)."""
    if settings.media_storage == "supabase":
        if not settings.supabase_url or settings.supabase_service_key is None:
            raise RuntimeError("MEDIA_STORAGE=supabase needs SUPABASE_URL and SUPABASE_SERVICE_KEY")
        return await SupabaseMediaStore.connect(
            settings.supabase_url, settings.supabase_service_key.get_secret_value(), settings.media_bucket,
            settings.state_dir / "media-staging", timeout=settings.media_download_timeout_seconds,
            create_bucket=create_bucket,
        )
    key = settings.media_signing_key.get_secret_value().encode() if settings.media_signing_key else None
    return LocalMediaStore(settings.media_dir, settings.media_bucket, signing_key=key, url_base=settings.media_local_url_base)
