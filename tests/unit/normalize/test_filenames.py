"""A document sent without a file name gets ``<provider message id>.<extension>``."""

from __future__ import annotations

import orjson
import pytest

from streams.normalize.filenames import document_filename
from streams.normalize.logic import normalise
from tests.unit.normalize.webhooks import delivery, fixture_bytes


@pytest.mark.parametrize(
    ("pmid", "mime", "name"),
    [
        ("3EB0A1B2C3D4E5F60720", "application/pdf", "3EB0A1B2C3D4E5F60720.pdf"),
        ("wamid.HBgL/x+y==", "application/pdf; charset=binary", "wamid.HBgL_x_y.pdf"),  # no path, no '='
        ("Wq7.tXa1-gBg", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "Wq7.tXa1-gBg.docx"),
        ("M1", "TEXT/CSV", "M1.csv"),
        ("M1", "application/x-unheard-of", "M1"),
        ("M1", None, "M1"),
        ("../..", "application/pdf", "document.pdf"),
    ],
)
def test_document_filename(pmid: str, mime: str | None, name: str) -> None:
    assert document_filename(pmid, mime) == name


def _without_name(provider: str) -> tuple[bytes, str]:
    body = orjson.loads(fixture_bytes(provider, "document_pdf"))
    if provider == "whapi":
        message = body["messages"][0]
        message["document"].pop("file_name"), message["document"].pop("filename")
        return orjson.dumps(body), message["id"]
    if provider == "meta":
        message = body["entry"][0]["changes"][0]["value"]["messages"][0]
        message["document"].pop("filename")
        return orjson.dumps(body), message["id"]
    part = body["data"]["message"]["documentMessage"]
    part.pop("fileName", None), part.pop("title", None)
    return orjson.dumps(body), body["data"]["key"]["id"]


@pytest.mark.parametrize("provider", ["whapi", "meta", "evolution"])
def test_each_provider_names_a_nameless_document_by_its_message_id(provider: str) -> None:
    body, pmid = _without_name(provider)
    [event] = normalise(delivery(provider, body=body))
    assert event.media is not None
    assert event.media.filename == f"{pmid.rstrip('=')}.pdf"  # type: ignore[union-attr]  # a wamid ends in '=='



def test_a_given_name_is_kept_and_other_media_get_none() -> None:
    [document] = normalise(delivery("whapi", "document_pdf"))
    assert document.media.filename == "invoice_2026-0193.pdf"  # type: ignore[union-attr]
    [image] = normalise(delivery("meta", "image_with_caption"))
    assert image.media.filename is None  # type: ignore[union-attr]


def test_an_outbound_document_is_named_too() -> None:
    send = {"provider": "meta", "channel_id": "100000000000001", "to": "15550001234", "provider_message_id": "wamid.D1",
            "type": "document", "media": {"mime_type": "application/pdf"}, "sent_at": "2026-11-20T09:16:00Z"}  # fmt: skip
    [event] = normalise(delivery("outbound", body=orjson.dumps(send)))
    assert event.media.filename == "wamid.D1.pdf"  # type: ignore[union-attr]
