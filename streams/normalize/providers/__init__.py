"""One pure normaliser per provider, looked up by the delivery's ``provider``.

Each is ``normalise(delivery, *, business_numbers) -> Normalised``: no I/O, the same
events and failures for the same bytes every time. Each item of a delivery (a message, a
status) is read on its own, so one malformed item becomes an ``ItemFailure`` beside its
neighbours' events; only an unreadable envelope raises ``UnparseableDelivery``.
``business_numbers`` (bare digits) only tells direction where a provider gives no from-me flag.
Declarative providers (a mapping file each, ``declarative.DeclarativeNormaliser``) come
from settings, through ``NormaliseConfig.declarative``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from contracts.ids import phone_digits
from contracts.provider_mapping import load_mappings
from contracts.raw import RawDelivery
from streams.normalize.errors import UnparseableDelivery
from streams.normalize.providers import evolution, meta, outbound, whapi
from streams.normalize.providers.declarative import DeclarativeNormaliser
from streams.normalize.providers.common import ITEM_ERRORS, ItemFailure, Normalised, describe

if TYPE_CHECKING:
    from streams.normalize.logic import NormaliseConfig


class Normaliser(Protocol):
    def __call__(self, delivery: RawDelivery, *, business_numbers: Collection[str] = ...) -> Normalised: ...


NORMALISERS: dict[str, Callable[..., Normalised]] = {
    whapi.PROVIDER: whapi.normalise,
    meta.PROVIDER: meta.normalise,
    "meta_cloud": meta.normalise,  # alias (the fixtures' folder name); events always say "meta"
    evolution.PROVIDER: evolution.normalise,
    outbound.PROVIDER: outbound.normalise,
}


def normalise_delivery(delivery: RawDelivery, config: NormaliseConfig | None = None) -> Normalised:
    """The delivery's events and failed items; raises ``UnparseableDelivery`` when its
    envelope cannot be read (no normaliser, not JSON, not its provider's shape).

    Both are poison, never transient: the same bytes fail the same way on every retry.
    """
    normaliser = NORMALISERS.get(delivery.provider) or (config.declarative.get(delivery.provider) if config else None)
    if normaliser is None:
        raise UnparseableDelivery(f"no normaliser for provider {delivery.provider!r}")
    numbers = frozenset(filter(None, map(phone_digits, config.business_numbers))) if config else frozenset()
    try:
        return normaliser(delivery, business_numbers=numbers)
    except UnparseableDelivery:
        raise
    except ITEM_ERRORS as exc:  # the envelope's own fields (Evolution's date_time, say)
        raise UnparseableDelivery(
            f"{delivery.provider} delivery {delivery.delivery_id}: malformed envelope ({describe('', exc)})"
        ) from None


def declarative_normalisers(paths: Iterable[Path]) -> dict[str, Normaliser]:
    """The normalisers of the mapping files at ``paths`` (DECLARATIVE_PROVIDERS), by provider
    name; a file that does not validate raises ``MappingFileError`` (at start-up)."""
    return {name: DeclarativeNormaliser(m) for name, m in load_mappings(list(paths)).items()}


__all__ = [
    "NORMALISERS", "ItemFailure", "Normalised", "Normaliser", "UnparseableDelivery", "declarative_normalisers",
    "normalise_delivery",
]  # fmt: skip
