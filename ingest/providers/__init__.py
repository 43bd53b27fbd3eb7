"""The provider registry. Adding a provider (WAHA, …) is one module here, no route code."""

from __future__ import annotations

from ingest.errors import UnknownProvider
from ingest.providers import evolution, meta, outbound, whapi
from ingest.providers.base import Handshake, Provider, Redacting

#: Webhook sources, by the name in ``/webhooks/{name}``.
REGISTRY: dict[str, Provider] = {m.name: m for m in (whapi, meta, evolution)}  # type: ignore[misc]

#: The business's own sends, posted to ``/events/outbound``.
OUTBOUND: Provider = outbound  # type: ignore[assignment]


def get(name: str) -> Provider:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownProvider(f"no provider named {name!r}") from None


def handshake_of(provider: Provider) -> Handshake | None:
    """The provider's GET subscription check, if it has one."""
    return provider if hasattr(provider, "handshake") else None  # type: ignore[return-value]


def redactor_of(provider: Provider) -> Redacting | None:
    """The provider's redaction of secrets in its bodies, if it has one."""
    return provider if hasattr(provider, "redact") else None  # type: ignore[return-value]
