"""Composition root of the extract stage: ``python -m streams.extract``.

Consumer group ``msgmem-extract`` reads wa.media and writes wa.documents: each stored PDF
(up to EXTRACT_MAX_BYTES) is read from its text layer locally (pypdf); pages without one
(at most PDF_MAX_MODEL_PAGES) are rendered at PDF_RENDER_DPI (pypdfium2) and read by
PDF_EXTRACTION_MODEL at OPENAI_BASE_URL, EXTRACT_CONCURRENCY calls at a time,
EXTRACT_MAX_ATTEMPTS attempts (2 s to 16 s backoff) before wa.deadletter. Model results are
cached by (sha256, stage, model). Logs ``[^Worker]: Ready`` once consuming.
"""

from __future__ import annotations

import asyncio

from contracts import processes
from contracts.settings import Settings
from streams.common.enrichment.bootstrap import EnrichmentHandler, Limits, Resources, enrichment_stage
from streams.extract.agent import ExtractHandler, config
from streams.extract.reader import OpenAIPageReader


def handler(settings: Settings, res: Resources) -> EnrichmentHandler:
    cfg, options = config(settings)
    reader = (
        OpenAIPageReader(res.client, settings.pdf_extraction_model, asyncio.Semaphore(settings.extract_concurrency))
        if res.client is not None else None
    )  # fmt: skip
    return ExtractHandler(cfg, options, res.store, reader, res.results, meter=res.meter)


def limits(s: Settings) -> Limits:
    return Limits(s.extract_concurrency, s.extract_max_attempts, s.extract_retry_min_seconds,
                  s.extract_retry_max_seconds)  # fmt: skip


STAGE = enrichment_stage(processes.EXTRACT, limits=limits, handler=handler)
