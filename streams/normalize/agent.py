"""The normalize stage's I/O edge: a wa.raw record in, wa.messages records out."""

from __future__ import annotations

from contracts import messages
from contracts.raw import RawDelivery
from contracts.settings import Settings
from streams.common.records import InputRecord, Output
from streams.common.runner import Handler
from streams.normalize.logic import NormaliseConfig, normalise

STAGE = "normalize"


def config_from(settings: Settings) -> NormaliseConfig:
    return NormaliseConfig.build(
        opt_out=settings.opt_out_keywords, opt_in=settings.opt_in_keywords, business_numbers=settings.business_numbers
    )


def outputs_for(record: InputRecord, config: NormaliseConfig) -> list[Output]:
    """Pure: one wa.raw record to its events, keyed by chat. Raises on a delivery that cannot be read."""
    delivery = RawDelivery.from_kafka(record.value, list(record.headers))
    return [
        Output(messages.TOPIC, event.chat_key.encode(), messages.encode_event(event), (("mm-type", event.type.encode()),))
        for event in normalise(delivery, config)
    ]


def make_handler(settings: Settings) -> Handler:
    config = config_from(settings)

    async def handle(record: InputRecord) -> list[Output]:
        return outputs_for(record, config)

    return handle
