"""A file name for a document the provider sent without one.

People and the extract stage recognise a document by its name; WhatsApp lets a sender
(or an API) omit it, and Meta and Evolution then send none. The name is derived, never
invented: ``<provider message id>.<extension of its MIME type>``, so the same message gets
the same name on every replay. The table is our own rather than ``mimetypes``: that
module reads the host's ``/etc/mime.types`` on first use, which is I/O in a pure stage
and can name a type differently on two machines.
"""

from __future__ import annotations

import re

EXTENSIONS: dict[str, str] = {
    "application/pdf": ".pdf", "text/plain": ".txt", "text/csv": ".csv", "text/html": ".html",
    "text/markdown": ".md", "application/rtf": ".rtf", "text/rtf": ".rtf", "application/json": ".json",
    "application/xml": ".xml", "text/xml": ".xml", "text/calendar": ".ics", "text/vcard": ".vcf",
    "text/x-vcard": ".vcf", "application/msword": ".doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.ms-powerpoint": ".ppt",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.oasis.opendocument.text": ".odt", "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/vnd.oasis.opendocument.presentation": ".odp", "application/epub+zip": ".epub",
    "application/zip": ".zip", "application/x-zip-compressed": ".zip", "application/vnd.rar": ".rar",
    "application/x-rar-compressed": ".rar", "application/x-7z-compressed": ".7z", "application/gzip": ".gz",
    "application/vnd.android.package-archive": ".apk", "application/octet-stream": ".bin",
    "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif", "image/heic": ".heic",
    "video/mp4": ".mp4", "audio/mpeg": ".mp3", "audio/ogg": ".ogg", "audio/mp4": ".m4a",
}  # fmt: skip

# Characters a file name may keep from a provider id (``wamid.HBgL…=``, ``3EB0…``, ``Wq7.tXa1-…``).
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_STEM = 120


def document_filename(provider_message_id: str, mime_type: str | None) -> str:
    """``<id>.<ext>``; an unknown or absent MIME type gives the bare id. Characters outside
    ``[A-Za-z0-9._-]`` become ``_`` (a ``/`` in an id must not make a path)."""
    stem = _UNSAFE.sub("_", provider_message_id).strip("._")[:_MAX_STEM] or "document"
    base = mime_type.split(";", 1)[0].strip().lower() if mime_type else ""
    return stem + EXTENSIONS.get(base, "")
