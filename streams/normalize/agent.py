"""The normalize stage's I/O edge: a wa.raw record in, wa.messages records out.

A delivery whose items are partly malformed still publishes its good events; each item
that failed adds one wa.deadletter record holding the whole input record (so `msgmem dlq
retry` can run it again) under its own id, ``normalize:wa.raw:partition:offset#path``.
Re-running re-emits the good events too, which is harmless: their ids are deterministic
and the projections idempotent. An unreadable envelope raises, and the runner
dead-letters the record as a whole. Every unmodelled fact (``MessageUnsupported``,
``ProviderEventUnsupported``) is counted in ``msgmem_normalize_unsupported_total{provider,kind}``.
"""

from __future__ import annotations

import logging
import re

import orjson
from prometheus_client import CollectorRegistry, Counter

from contracts import deadletter, messages, processes
from contracts.deadletter import DeadLettered
from contracts.messages import RecordRef
from contracts.raw import RawDelivery
from contracts.settings import Settings
from contracts.topics import limit_of, record_size
from streams.common.records import InputRecord, Output
from streams.common.runner import Handler
from streams.normalize.errors import MalformedItem
from streams.normalize.providers import declarative_normalisers
from streams.normalize.logic import ItemFailure, NormaliseConfig, normalise_parts, with_inline_record

STAGE = processes.NORMALIZE.name

log = logging.getLogger(__name__)

_KIND = re.compile(r"[A-Za-z0-9_.:@-]{1,64}").fullmatch


class NormalizeMetrics:
    """Unmodelled facts by provider and kind: what a later version should learn to read."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.unsupported = Counter(
            "msgmem_normalize_unsupported", "Provider facts kept as unsupported events, by provider and kind",
            ["provider", "kind"], registry=registry or CollectorRegistry(),
        )
        self._children: dict[tuple[str, str], Counter] = {}

    def count(self, event: messages.MessageEvent) -> None:
        """Count ``event`` if it is an unsupported one. A kind that is not a short plain name
        (it comes from the payload) counts as ``other``, so labels stay few and say no value."""
        if event.type not in messages.UNSUPPORTED_TYPES:
            return
        kind = event.provider_type if _KIND(event.provider_type) else "other"  # type: ignore[union-attr]
        child = self._children.get((event.provider, kind))
        if child is None:
            child = self._children[(event.provider, kind)] = self.unsupported.labels(event.provider, kind)
        child.inc()


def config_from(settings: Settings) -> NormaliseConfig:
    """Built once at start-up: a declarative provider's mapping file that does not validate stops it here."""
    return NormaliseConfig.build(
        opt_out=settings.opt_out_keywords, opt_in=settings.opt_in_keywords, business_numbers=settings.business_numbers,
        declarative=declarative_normalisers(settings.declarative_providers),
    )


def outputs_for(
    record: InputRecord, config: NormaliseConfig, max_event_bytes: int | None = None,
    metrics: NormalizeMetrics | None = None,
) -> list[Output]:  # fmt: skip
    """One wa.raw record to its events, keyed by chat, then one dead letter per failed item.
    No I/O. Raises ``UnparseableDelivery`` on a delivery whose envelope cannot be read.

    A message whose media bytes are inline in the delivery points at this record
    (``media.inline_record``): the media stage reads them there, not from the event.

    An event over ``max_event_bytes`` (wa.messages' record limit) is stored with its provider
    ``raw`` part trimmed and flagged (``raw == {"msgmem_trimmed": True, "raw_bytes": N}``);
    one still too large becomes a failed item of its own, so its neighbours flow."""
    delivery = RawDelivery.from_kafka(record.value, list(record.headers))
    found = normalise_parts(delivery, config)
    source = RecordRef(topic=record.topic, partition=record.partition, offset=record.offset)
    outputs: list[Output] = []
    failures = list(found.failures)
    unsupported = messages.UNSUPPORTED_TYPES
    for event in found.events:
        if metrics is not None and event.type in unsupported:
            metrics.count(event)
        output = event_output(with_inline_record(event, source), max_event_bytes)
        if output is None:
            failures.append(ItemFailure(f"event {event.event_id}", f"{event.type}: over {max_event_bytes:,} bytes"))
        else:
            outputs.append(output)
    for failure in failures:
        outputs.append(dead_letter(record, failure))
    return outputs


def event_output(event: messages.MessageEvent, max_bytes: int | None) -> Output | None:
    """The event's record, trimmed of its raw part if that makes it fit; None if nothing does."""
    key, headers = event.chat_key.encode(), (("mm-type", event.type.encode()),)
    value = messages.encode_event(event)
    if max_bytes is None or record_size(key, value, headers) <= max_bytes:
        return Output(messages.TOPIC, key, value, headers)
    raw = getattr(event, "raw", None)
    if raw:
        trimmed = event.model_copy(update={"raw": {"msgmem_trimmed": True, "raw_bytes": len(orjson.dumps(raw))}})
        value = messages.encode_event(trimmed)
        if record_size(key, value, headers) <= max_bytes:
            return Output(messages.TOPIC, key, value, headers)
    return None


def dead_letter(record: InputRecord, failure: ItemFailure) -> Output:
    """The whole record, dead-lettered for one failed item (``part``: the item's path)."""
    log.warning(
        "%s: dead-lettering %s of %s[%d]@%d: %s",
        STAGE, failure.path, record.topic, record.partition, record.offset, failure.error,
    )
    letter = DeadLettered.of(
        STAGE, topic=record.topic, partition=record.partition, offset=record.offset, key=record.key,
        value=record.value, headers=record.headers, error=MalformedItem(failure.error), attempts=1,
        part=failure.path,
    )
    return Output(deadletter.TOPIC, STAGE.encode(), letter.encode())


def make_handler(
    settings: Settings, metrics: NormalizeMetrics | None = None, config: NormaliseConfig | None = None
) -> Handler:
    config = config or config_from(settings)
    max_event_bytes = limit_of(messages.TOPIC, settings.kafka_max_message_bytes)

    async def handle(record: InputRecord) -> list[Output]:
        return outputs_for(record, config, max_event_bytes, metrics)

    return handle
