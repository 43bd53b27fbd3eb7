"""Reading PDFs locally: each page's text layer (pypdf), and a page rendered to a PNG (pypdfium2).

Pages without a text layer are rendered to a grayscale PNG and sent to a vision model as an
image, rather than sent as a one-page PDF file input: every OpenAI-compatible vision server
takes images, file inputs are OpenAI's own, and the rendering fixes what the page costs.
pypdfium2 ships PDFium in its wheels; the PNG is written here (a few lines of zlib) so no
imaging library is needed. CPU-bound: callers run these in a thread.
"""

from __future__ import annotations

import io
import struct
import zlib

import pypdf
import pypdfium2 as pdfium
from pypdf.errors import PdfReadError


class UnreadablePdf(Exception):
    """Damaged or encrypted: a fact about the file, never worth a retry."""


def text_layers(data: bytes, min_chars: int) -> list[str | None]:
    """Each page's text, or None where the page has no text layer (fewer than ``min_chars`` characters)."""
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            reader.decrypt("")  # many "encrypted" PDFs only restrict printing, with an empty user password
        pages: list[str | None] = []
        for page in reader.pages:
            text = (page.extract_text() or "").strip()
            pages.append(text if len(text) >= min_chars else None)
        return pages
    except (PdfReadError, ValueError, KeyError, TypeError, NotImplementedError) as exc:
        # The type only: a parser's message can quote bytes of the file (issue 14: no input values).
        raise UnreadablePdf(f"{type(exc).__name__} while reading the PDF") from exc


def render_page(data: bytes, number: int, dpi: int) -> bytes:
    """Page ``number`` (1-based) as a grayscale PNG at ``dpi``."""
    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise UnreadablePdf(str(exc)) from exc
    try:
        bitmap = doc[number - 1].render(scale=dpi / 72, grayscale=True)
        if bitmap.n_channels != 1:  # pragma: no cover - PDFium honours grayscale
            raise UnreadablePdf("PDFium rendered a colour bitmap")
        return grayscale_png(bytes(bitmap.buffer), bitmap.width, bitmap.height, bitmap.stride)
    finally:
        doc.close()


def grayscale_png(pixels: bytes, width: int, height: int, stride: int) -> bytes:
    """An 8-bit grayscale PNG of ``pixels`` (rows of ``stride`` bytes, ``width`` of them used)."""
    rows = b"".join(b"\x00" + pixels[y * stride : y * stride + width] for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b"")
