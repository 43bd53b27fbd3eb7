"""Reading PDFs locally: text layers with pypdf, pages rendered to a valid PNG with pypdfium2."""

from __future__ import annotations

import struct
import zlib

import pytest

from streams.extract.pdf import UnreadablePdf, grayscale_png, render_page, text_layers
from tests.fakes.events import fixture_path


def test_the_text_pdf_has_a_text_layer_on_every_page() -> None:
    pages = text_layers(fixture_path("invoice_text.pdf").read_bytes(), 16)
    assert len(pages) == 2 and all(pages)
    assert "INVOICE 2026-0193" in pages[0] and "Total due: 189.00 EUR" in pages[0]  # type: ignore[operator]
    assert "Terms and conditions" in pages[1]  # type: ignore[operator]


def test_the_scanned_pdf_has_none() -> None:
    assert text_layers(fixture_path("receipt_scanned.pdf").read_bytes(), 16) == [None]


def test_garbage_is_unreadable() -> None:
    with pytest.raises(UnreadablePdf):
        text_layers(b"%PDF-1.4 not really", 16)


def png_pixels(png: bytes) -> tuple[int, int, bytes]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", (0, 0)
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(kind + body)
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
            assert body[8:10] == b"\x08\x00"  # 8-bit grayscale
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return size[0], size[1], zlib.decompress(idat)


def test_png_encoder_round_trips() -> None:
    width, height, raw = png_pixels(grayscale_png(bytes(range(12)) + b"\xff" * 4, 3, 4, 4))
    assert (width, height) == (3, 4)
    assert raw == b"\x00\x00\x01\x02" + b"\x00\x04\x05\x06" + b"\x00\x08\x09\x0a" + b"\x00\xff\xff\xff"


def test_a_scanned_page_renders_at_the_requested_resolution() -> None:
    png = render_page(fixture_path("receipt_scanned.pdf").read_bytes(), 1, 72)
    width, height, raw = png_pixels(png)
    assert 500 < width < 700 and 700 < height < 900  # A4 at 72 dpi is 595 x 842
    assert len(raw) == height * (width + 1) and len(set(raw)) > 16  # a real picture, not a blank page
