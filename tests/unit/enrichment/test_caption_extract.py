"""Captions and PDF text with the real OpenAI SDK against the fake server: the text PDF never
calls the model, the scanned one does (once, then from the cache); images are captioned,
stickers are not; without a key the text layer is still read."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from contracts import enrichment
from contracts.settings import Settings
from contracts.usage import Usage
from streams.caption.agent import make_handler as caption_handler
from streams.caption.captioner import OpenAICaptioner
from streams.caption.logic import MAX_TOKENS, PROMPT
from streams.common.outputs import RecordingOutputs
from streams.common.runner import RetryPolicy, StageRunner
from streams.extract.agent import ExtractHandler, config
from streams.extract.pdf import render_page
from streams.extract.reader import OpenAIPageReader
from streams.media.logic import content_path
from tests.fakes.events import fixture_path, media_record, sha256_file, stored_event
from tests.unit.enrichment.conftest import Env, usage_counters


def captions(env: Env, **settings: object):  # type: ignore[no-untyped-def]
    s = env.settings.model_copy(update=settings)
    captioner = OpenAICaptioner(env.client, s.vision_model, asyncio.Semaphore(4), prompt=PROMPT, max_tokens=MAX_TOKENS)
    return caption_handler(s, env.store, captioner, env.results)


def extractor(env: Env, *, with_key: bool = True, **settings: object) -> ExtractHandler:
    s: Settings = env.settings.model_copy(update=settings)
    cfg, options = config(s)
    reader = OpenAIPageReader(env.client, s.pdf_extraction_model, asyncio.Semaphore(4)) if with_key else None
    return ExtractHandler(cfg, options, env.store, reader, env.results)


async def only(handler, event, decode):  # type: ignore[no-untyped-def]
    [out] = await handler(media_record(event))
    assert out.key == event.chat_key.encode()
    return decode(out.value)


async def test_images_are_captioned_once(env: Env) -> None:
    env.fake.descriptions[sha256_file("receipt_photo.jpg")] = "A delivery receipt. DELIVERY RECEIPT Order 4271"
    handler = captions(env)
    first = await only(handler, stored_event("receipt_photo.jpg", "image"), enrichment.decode_caption)
    again = await only(handler, stored_event("receipt_photo.jpg", "image", message="fwd"), enrichment.decode_caption)
    assert isinstance(first, enrichment.ImageCaptioned) and first.caption.startswith("A delivery receipt")
    assert again.cached and again.caption == first.caption and first.model == "gpt-4o-mini"
    [call] = env.fake.calls("/v1/chat/completions")
    assert call.sha256 == sha256_file("receipt_photo.jpg")  # the image itself went as a data URL


async def test_stickers_are_not_captioned_and_odd_formats_are_skipped(env: Env) -> None:
    handler = captions(env)
    assert await handler(media_record(stored_event("sticker.webp", "sticker"))) == []
    heic = stored_event("receipt_photo.jpg", "image", mime="image/heic")
    skipped = await only(handler, heic, enrichment.decode_caption)
    assert isinstance(skipped, enrichment.EnrichmentSkipped) and skipped.reason == "unsupported"
    disabled = await only(captions(env, enable_vision_captions=False), stored_event("receipt_photo.jpg", "image"),
                          enrichment.decode_caption)  # fmt: skip
    assert disabled.reason == "disabled" and env.fake.calls() == []


async def test_the_text_pdf_never_calls_the_model(env: Env) -> None:
    doc = await only(extractor(env), stored_event("invoice_text.pdf", "document"), enrichment.decode_document)
    assert isinstance(doc, enrichment.DocumentExtracted) and doc.complete and doc.model is None
    assert "INVOICE 2026-0193" in doc.text and "Terms and conditions" in doc.text and doc.page_count == 2
    assert [p.source for p in doc.pages] == ["text_layer", "text_layer"]
    assert env.fake.calls() == [] and env.cache.gets == []


async def test_the_scanned_pdf_is_read_by_the_model_once(env: Env) -> None:
    page = render_page(fixture_path("receipt_scanned.pdf").read_bytes(), 1, env.settings.pdf_render_dpi)
    env.fake.descriptions[hashlib.sha256(page).hexdigest()] = "DELIVERY RECEIPT\nOrder 4271\nTotal: 189.00 EUR"
    handler = extractor(env)
    doc = await only(handler, stored_event("receipt_scanned.pdf", "document"), enrichment.decode_document)
    assert isinstance(doc, enrichment.DocumentExtracted) and doc.complete
    assert doc.text == "DELIVERY RECEIPT\nOrder 4271\nTotal: 189.00 EUR" and doc.model == "gpt-4o-mini"
    assert [p.source for p in doc.pages] == ["model"]
    again = await only(handler, stored_event("receipt_scanned.pdf", "document", message="dup"), enrichment.decode_document)
    assert again.cached and again.text == doc.text
    [call] = env.fake.calls("/v1/chat/completions")
    assert call.model == "gpt-4o-mini" and call.sha256 == hashlib.sha256(page).hexdigest()


async def test_without_a_key_the_text_layer_is_still_read(env: Env) -> None:
    handler = extractor(env, with_key=False)
    text = await only(handler, stored_event("invoice_text.pdf", "document"), enrichment.decode_document)
    assert text.complete and "INVOICE" in text.text
    scanned = await only(handler, stored_event("receipt_scanned.pdf", "document"), enrichment.decode_document)
    assert isinstance(scanned, enrichment.DocumentExtracted) and not scanned.complete
    assert scanned.skipped_reason == "no_api_key" and [p.source for p in scanned.pages] == ["skipped"]
    assert env.fake.calls() == [] and env.cache.items == {}  # not cached: a later run with a key fills it


async def test_unreadable_and_non_pdf_documents(env: Env) -> None:
    handler = extractor(env)
    jpeg = content_path(sha256_file("receipt_photo.jpg"), "image/jpeg")
    broken = stored_event("receipt_photo.jpg", "document", mime="application/pdf", path=jpeg)  # JPEG bytes as a PDF
    skipped = await only(handler, broken, enrichment.decode_document)
    assert isinstance(skipped, enrichment.EnrichmentSkipped) and skipped.reason == "unreadable"
    gone = stored_event("invoice_text.pdf", "document", path="00/00/swept.pdf")
    assert (await only(handler, gone, enrichment.decode_document)).reason == "unreadable"
    gone_image = stored_event("receipt_photo.jpg", "image", path="00/00/swept.jpg")
    assert (await only(captions(env), gone_image, enrichment.decode_caption)).reason == "unreadable"
    assert await handler(media_record(stored_event("video_clip.mp4", "document", mime="video/mp4"))) == []


async def test_page_reads_retry_on_their_own_schedule(env: Env) -> None:
    handler = extractor(env)
    env.fake.fail(status=503, times=2, path="/v1/chat/completions")
    writer = RecordingOutputs()
    runner = StageRunner("extract", handler, writer, policy=RetryPolicy(3, 0.01, 0.04), give_up=handler.give_up)
    await runner.run_batch([media_record(stored_event("receipt_scanned.pdf", "document"))])
    assert [c.status for c in env.fake.calls("/v1/chat/completions")] == [503, 503, 200]
    assert isinstance(enrichment.decode_document(writer.written[0].value), enrichment.DocumentExtracted)


async def test_captions_and_model_read_pages_record_their_usage(env: Env) -> None:
    env.fake.descriptions[sha256_file("receipt_photo.jpg")] = "A delivery receipt for order 4271."
    photo = await only(captions(env), stored_event("receipt_photo.jpg", "image"), enrichment.decode_caption)
    assert photo.usage == Usage(model="gpt-4o-mini", calls=1, input_tokens=85, output_tokens=len(photo.caption) // 4)
    text = await only(extractor(env), stored_event("invoice_text.pdf", "document"), enrichment.decode_document)
    assert text.usage is None  # the text layer is free
    handler = extractor(env)
    handler.meter = env.metrics.usage.meter(env.settings.ai_prices)
    scanned = await only(handler, stored_event("receipt_scanned.pdf", "document"), enrichment.decode_document)
    assert scanned.usage is not None and (scanned.usage.calls, scanned.usage.pages) == (1, 1)
    assert scanned.usage.input_tokens == 85 and scanned.usage.output_tokens == len(scanned.text) // 4
    again = await only(handler, stored_event("receipt_scanned.pdf", "document", message="fwd"), enrichment.decode_document)
    assert again.usage == Usage(model="gpt-4o-mini", cache_hits=1)
    counted = usage_counters(env.metrics.usage, "test", "gpt-4o-mini")
    assert (counted["calls"], counted["pages"], counted["cache_hits"]) == (1, 1, 1)
    assert counted["spend_usd"] == pytest.approx((85 * 0.15 + len(scanned.text) // 4 * 0.60) / 1e6)
