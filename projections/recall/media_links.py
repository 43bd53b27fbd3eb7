"""Short-lived signed URLs of stored media for the memory API, and the check of a local one.

Supabase Storage signs its own URLs. A local store has no server of its own, so the recall
service hands its files out at ``GET /media/{path}?expires=...&signature=...`` (HMAC-SHA256
with MEDIA_SIGNING_KEY, ``runtime.media_storage.sign_local``) under MEDIA_LOCAL_URL_BASE,
or under the recall service's own address when that is unset. Without MEDIA_SIGNING_KEY a
local file gets no URL, and ``url_unavailable`` says so (a ``file://`` path would mean
nothing to an agent elsewhere). Only a ``stored`` object has a URL.
"""

from __future__ import annotations

import mimetypes
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from contracts.settings import Settings
from runtime.media_storage import MediaStore, local_file, local_signed_url, verify_local_signature

# Served with their own type; anything else as bytes to download.
SERVED_TYPES = ("image/", "audio/", "video/", "application/pdf", "text/plain")


@dataclass(frozen=True)
class Link:
    url: str | None
    expires_at: datetime | None
    unavailable: str | None


@dataclass(frozen=True)
class MediaLinks:
    """Signs URLs for stored objects: ``store`` (Supabase) or the local key and folder."""

    ttl_seconds: int
    store: MediaStore | None = None
    local_key: bytes | None = None
    local_root: Path | None = None
    local_url_base: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, store: MediaStore | None = None) -> "MediaLinks":
        key = settings.media_signing_key.get_secret_value().encode() if settings.media_signing_key else None
        return cls(settings.media_url_ttl_seconds, store, key, settings.media_dir, settings.media_local_url_base)

    async def link(self, status: str, path: str | None, own_base: str | None) -> Link:
        """The URL of an object in ``status`` at ``path``; ``own_base``: the recall service's URL, if serving."""
        if status != "stored" or not path:
            return Link(None, None, f"the file is {status}" if status != "stored" else "the file has no path")
        expires = int(time.time()) + self.ttl_seconds
        at = datetime.fromtimestamp(expires, UTC)
        if self.store is not None:
            return Link(await self.store.signed_url(path, self.ttl_seconds), at, None)
        if self.local_key is None:
            return Link(None, None, "MEDIA_SIGNING_KEY is not set")
        base = self.local_url_base or (f"{own_base.rstrip('/')}/media" if own_base else None)
        if base is None:
            return Link(None, None, "MEDIA_LOCAL_URL_BASE is not set")
        return Link(local_signed_url(base, path, expires, self.local_key), at, None)

    def local_object(self, path: str, expires: int, signature: str) -> tuple[Path, str] | None:
        """The file a local signed URL names and its content type, or None (bad or expired
        signature, no key, a path outside the store, or no such file)."""
        if self.local_key is None or self.local_root is None or not verify_local_signature(
                path, expires, signature, self.local_key):  # fmt: skip
            return None
        try:
            target = local_file(self.local_root, path)
        except ValueError:
            return None
        if not target.is_file():
            return None
        guessed = mimetypes.guess_type(path)[0] or ""
        return target, guessed if guessed.startswith(SERVED_TYPES) else "application/octet-stream"
