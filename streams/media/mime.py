"""The content type a media file is stored with: an allow-listed type its bytes confirm.

The provider's or the webhook's type is a claim (a sender may label an ``.exe`` image/jpeg).
``stored_mime(claims, head)`` keeps a claimed type only when it is on the allow-list and the
file's first bytes carry that format's signature; else the allow-listed format the signature
shows; anything else is ``application/octet-stream``. A compact table of signatures of our
own covers the allow-list (the formats WhatsApp carries), so no library is needed.

Pure: ``head`` is the file's first ``HEAD_BYTES`` bytes, kept while the download is spooled.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable

FALLBACK_MIME = "application/octet-stream"
HEAD_BYTES = 4096

_FTYP_HEIF = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif"}


def _jpeg(h: bytes) -> bool:
    return h.startswith(b"\xff\xd8\xff")


def _png(h: bytes) -> bool:
    return h.startswith(b"\x89PNG\r\n\x1a\n")


def _gif(h: bytes) -> bool:
    return h[:6] in (b"GIF87a", b"GIF89a")


def _webp(h: bytes) -> bool:
    return h[:4] == b"RIFF" and h[8:12] == b"WEBP"


def _wav(h: bytes) -> bool:
    return h[:4] == b"RIFF" and h[8:12] == b"WAVE"


def _ftyp(h: bytes) -> bool:  # ISO base media: MP4, M4A, MOV, 3GP
    return h[4:8] == b"ftyp" and h[8:12] not in _FTYP_HEIF


def _heif(h: bytes) -> bool:
    return h[4:8] == b"ftyp" and h[8:12] in _FTYP_HEIF


def _ogg(h: bytes) -> bool:
    return h.startswith(b"OggS")


def _mpeg_audio(h: bytes) -> bool:  # MP3 (ID3 tag or frame sync) and ADTS AAC
    return h.startswith(b"ID3") or (len(h) >= 2 and h[0] == 0xFF and h[1] & 0xE0 == 0xE0)


def _amr(h: bytes) -> bool:
    return h.startswith(b"#!AMR")


def _matroska(h: bytes) -> bool:  # WebM
    return h.startswith(b"\x1a\x45\xdf\xa3")


def _pdf(h: bytes) -> bool:
    return h[:1024].lstrip(b"\x00\t\n\r\x0c ").startswith(b"%PDF-")


def _text(h: bytes) -> bool:
    """UTF-8 (a character cut at the end of ``head`` allowed) without control characters."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(h, final=False)
    except UnicodeDecodeError:
        return False
    return bool(h) and not any(ord(c) < 32 and c not in "\t\n\r\x0c" or c == "\x7f" for c in text)


# Allow-listed type -> its signature. Order matters for ``sniff`` (the first match names the format).
ALLOWED: dict[str, Callable[[bytes], bool]] = {
    "image/jpeg": _jpeg, "image/png": _png, "image/gif": _gif, "image/webp": _webp, "image/heic": _heif,
    "image/heif": _heif, "video/mp4": _ftyp, "audio/mp4": _ftyp, "video/quicktime": _ftyp, "video/3gpp": _ftyp,
    "audio/ogg": _ogg, "audio/opus": _ogg, "audio/mpeg": _mpeg_audio, "audio/mp3": _mpeg_audio,
    "audio/aac": _mpeg_audio, "audio/amr": _amr, "audio/wav": _wav, "audio/x-wav": _wav, "audio/webm": _matroska,
    "video/webm": _matroska, "application/pdf": _pdf, "text/plain": _text,
}  # fmt: skip


def base_mime(mime: str | None) -> str | None:
    """``Audio/OGG; codecs=opus`` -> ``audio/ogg``; None for nothing."""
    return mime.split(";", 1)[0].strip().lower() or None if mime else None


def sniff(head: bytes) -> str | None:
    """The first allow-listed type whose signature ``head`` carries."""
    return next((mime for mime, matches in ALLOWED.items() if matches(head)), None)


def stored_mime(claims: tuple[str | None, ...], head: bytes) -> str:
    """The first claimed type (the webhook's, then the provider's) that is allow-listed and
    confirmed by the bytes; else the allow-listed type the bytes show; else octet-stream."""
    for claim in claims:
        mime = base_mime(claim)
        check = ALLOWED.get(mime or "")
        if check is not None and check(head):
            return mime  # type: ignore[return-value]
    return sniff(head) or FALLBACK_MIME
