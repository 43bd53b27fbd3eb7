"""One pure normaliser per provider, looked up by the delivery's ``provider``.

Each is ``normalise(delivery, *, business_numbers) -> list[MessageEvent]``: no I/O, the
same events for the same bytes every time. ``business_numbers`` (bare digits) only tells
direction where a provider gives no from-me flag.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Protocol

from contracts.ids import phone_digits
from contracts.messages import MessageEvent
from contracts.raw import RawDelivery
from streams.normalize.errors import NormaliseError, UnparseableDelivery
from streams.normalize.providers import evolution, meta, outbound, whapi

if TYPE_CHECKING:
    from streams.normalize.logic import NormaliseConfig


class Normaliser(Protocol):
    def __call__(self, delivery: RawDelivery, *, business_numbers: Collection[str] = ...) -> list[MessageEvent]: ...


NORMALISERS: dict[str, Callable[..., list[MessageEvent]]] = {
    whapi.PROVIDER: whapi.normalise,
    meta.PROVIDER: meta.normalise,
    "meta_cloud": meta.normalise,  # alias (the fixtures' folder name); events always say "meta"
    evolution.PROVIDER: evolution.normalise,
    outbound.PROVIDER: outbound.normalise,
}


def normalise_delivery(delivery: RawDelivery, config: NormaliseConfig | None = None) -> list[MessageEvent]:
    """The delivery's events; raises ``UnparseableDelivery`` for anything to dead-letter.

    A recognised body whose parts are malformed (a missing id, a bad timestamp) fails the
    same way on every retry, so it is poison too, never a transient error.
    """
    normaliser = NORMALISERS.get(delivery.provider)
    if normaliser is None:
        raise UnparseableDelivery(f"no normaliser for provider {delivery.provider!r}")
    numbers = frozenset(filter(None, map(phone_digits, config.business_numbers))) if config else frozenset()
    try:
        return normaliser(delivery, business_numbers=numbers)
    except NormaliseError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise UnparseableDelivery(
            f"{delivery.provider} delivery {delivery.delivery_id}: malformed ({type(exc).__name__}: {exc})"
        ) from exc


__all__ = ["NORMALISERS", "Normaliser", "UnparseableDelivery", "normalise_delivery"]
