"""The normalize stage's pure logic: one wa.raw delivery -> its wa.messages events.

The provider normaliser gives the message events and the items it could not read; an
inbound 1:1 text that is an opt-out or opt-in keyword is followed by a ``ConsentChanged``
for its chat. No Kafka, no I/O: the agent decodes the record, calls ``normalise_parts``
and publishes the events, one dead letter per failed item, and dead-letters the whole
record on ``UnparseableDelivery``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from contracts.ids import event_id
from contracts.messages import ConsentChanged, MessageEvent, MessageReceived, MessageSent, RecordRef
from contracts.raw import RawDelivery
from streams.normalize.consent import DEFAULT_OPT_IN_KEYWORDS, DEFAULT_OPT_OUT_KEYWORDS, detect
from streams.normalize.errors import NormaliseError, UnparseableDelivery
from streams.normalize.providers import ItemFailure, Normalised, Normaliser, normalise_delivery

__all__ = [
    "ItemFailure", "NormaliseConfig", "NormaliseError", "Normalised", "UnparseableDelivery", "consent_event",
    "normalise", "normalise_parts", "with_inline_record",
]  # fmt: skip

_CHAT_FIELDS = ("chat_key", "occurred_at", "received_at", "provider", "channel_id", "delivery_id", "chat_id",
                "is_group", "group_name", "contact_phone", "contact_name")  # fmt: skip


@dataclass(frozen=True)
class NormaliseConfig:
    """What the stage needs from settings; the composition root builds it once."""

    opt_out_keywords: tuple[str, ...] = DEFAULT_OPT_OUT_KEYWORDS
    opt_in_keywords: tuple[str, ...] = DEFAULT_OPT_IN_KEYWORDS
    business_numbers: frozenset[str] = field(default_factory=frozenset)
    #: the declarative providers' normalisers, by provider name (DECLARATIVE_PROVIDERS)
    declarative: Mapping[str, Normaliser] = field(default_factory=dict, hash=False)

    @classmethod
    def build(
        cls, opt_out: Iterable[str] = (), opt_in: Iterable[str] = (), business_numbers: Iterable[str] = (),
        declarative: Mapping[str, Normaliser] | None = None,
    ) -> NormaliseConfig:  # fmt: skip
        """The defaults plus configured extra keywords."""
        return cls(
            opt_out_keywords=tuple(dict.fromkeys((*DEFAULT_OPT_OUT_KEYWORDS, *opt_out))),
            opt_in_keywords=tuple(dict.fromkeys((*DEFAULT_OPT_IN_KEYWORDS, *opt_in))),
            business_numbers=frozenset(business_numbers),
            declarative=dict(declarative or {}),
        )


def normalise_parts(delivery: RawDelivery, config: NormaliseConfig | None = None) -> Normalised:
    """The delivery's events (consent changes after their messages) and its failed items.
    Raises ``UnparseableDelivery`` only when the envelope cannot be read."""
    config = config or NormaliseConfig()
    found = normalise_delivery(delivery, config)
    events: list[MessageEvent] = []
    for event in found.events:
        events.append(event)
        consent = consent_event(event, config)
        if consent is not None:
            events.append(consent)
    return Normalised(events, found.failures)


def normalise(delivery: RawDelivery, config: NormaliseConfig | None = None) -> list[MessageEvent]:
    """All or nothing, for tests and tools: the events, or ``UnparseableDelivery`` naming the
    first failed item. The stage itself uses ``normalise_parts``, which keeps the good ones."""
    found = normalise_parts(delivery, config)
    if found.failures:
        raise UnparseableDelivery(f"{len(found.failures)} item(s) failed; first {found.failures[0].error}")
    return found.events


def with_inline_record(event: MessageEvent, source: RecordRef) -> MessageEvent:
    """``event`` with ``media.inline_record`` = ``source`` when its media bytes are inline in
    that wa.raw record (Evolution's webhook_base64), so the media stage can read them there.
    The providers' normalisers cannot know the record's place; only this sets it (one a
    sender put in an outbound event's media is dropped). Any other event is unchanged."""
    if not isinstance(event, MessageReceived | MessageSent) or event.media is None:
        return event
    where = source if event.media.inline_base64 else None
    if event.media.inline_record == where:
        return event
    return event.model_copy(update={"media": event.media.model_copy(update={"inline_record": where})})


def consent_event(event: MessageEvent, config: NormaliseConfig) -> ConsentChanged | None:
    """Groups are skipped: STOP typed in a group is not one contact leaving a conversation."""
    if not isinstance(event, MessageReceived) or event.is_group:
        return None
    found = detect(event.text, config.opt_out_keywords, config.opt_in_keywords)
    if found is None:
        return None
    state, keyword = found
    return ConsentChanged(
        **{name: getattr(event, name) for name in _CHAT_FIELDS},
        event_id=event_id(event.provider, event.channel_id, event.provider_message_id, "consent_changed", state),
        state=state,
        keyword=keyword,
        provider_message_id=event.provider_message_id,
        message_id=event.message_id,
    )
