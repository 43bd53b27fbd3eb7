"""Pure rules of the extract stage: which media it reads, which pages go to the model, and the event."""

from __future__ import annotations

from datetime import datetime

from contracts.enrichment import DocumentExtracted, PageText, SkipReason
from contracts.media import MediaStored
from contracts.usage import Usage
from streams.common.enrichment.events import StageConfig, derived
from streams.media.logic import base_mime

# Beyond this, the text is cut (and ``truncated`` set): an event must fit a Kafka record.
MAX_TEXT_CHARS = 1_000_000
PAGE_SEPARATOR = "\n\n"


def wants(m: MediaStored) -> bool:
    return m.kind == "document" and (
        base_mime(m.mime_type) == "application/pdf" or (m.filename or "").lower().endswith(".pdf")
    )


def pages_for_model(layers: list[str | None], max_pages: int) -> tuple[list[int], list[int]]:
    """(pages to send to the model, pages left out by the page limit), 1-based, among those without text."""
    missing = [n for n, text in enumerate(layers, start=1) if text is None]
    return missing[:max_pages], missing[max_pages:]


def assemble(
    m: MediaStored, cfg: StageConfig, layers: list[str | None], model_pages: dict[int, str], *,
    skipped_reason: SkipReason | None, cached: bool, now: datetime, usage: Usage | None = None,
) -> DocumentExtracted:  # fmt: skip
    """Pages in order, each from its text layer, the model, or nowhere (skipped)."""
    texts: list[str] = []
    pages: list[PageText] = []
    for number, layer in enumerate(layers, start=1):
        if layer is not None:
            text, source = layer, "text_layer"
        elif number in model_pages:
            text, source = model_pages[number], "model"
        else:
            text, source = "", "skipped"
        pages.append(PageText(number=number, source=source, chars=len(text)))  # type: ignore[arg-type]
        if text:
            texts.append(text)
    joined = PAGE_SEPARATOR.join(texts)
    complete = all(p.source != "skipped" for p in pages)
    return DocumentExtracted(
        **derived(m, cfg, "document_extracted", now=now, model=cfg.model if model_pages else None, cached=cached),
        text=joined[:MAX_TEXT_CHARS], page_count=len(layers), pages=tuple(pages), complete=complete,
        skipped_reason=None if complete else (skipped_reason or "too_large"), truncated=len(joined) > MAX_TEXT_CHARS,
        usage=usage,
    )
