"""The provider registry. Adding a provider (WAHA, …) is one module here, no route code,
or, for a gateway that needs no code, one mapping file named in DECLARATIVE_PROVIDERS."""

from __future__ import annotations

from collections.abc import Mapping

from contracts.provider_mapping import load_mappings
from contracts.settings import Settings
from ingest.errors import UnknownProvider
from ingest.providers import declarative, evolution, meta, outbound, whapi
from ingest.providers.base import Handshake, Provider, Redacting

#: Webhook sources, by the name in ``/webhooks/{name}``.
REGISTRY: dict[str, Provider] = {m.name: m for m in (whapi, meta, evolution)}  # type: ignore[misc]

#: The business's own sends, posted to ``/events/outbound``.
OUTBOUND: Provider = outbound  # type: ignore[assignment]


def registry(settings: Settings) -> dict[str, Provider]:
    """The built-in providers and the declarative ones of DECLARATIVE_PROVIDERS, loaded now:
    a mapping file that does not validate raises ``MappingFileError`` at start-up."""
    found = {name: declarative.build(m, settings) for name, m in load_mappings(settings.declarative_providers).items()}
    return REGISTRY | found  # type: ignore[operator]


def get(name: str, providers: Mapping[str, Provider] = REGISTRY) -> Provider:
    try:
        return providers[name]
    except KeyError:
        raise UnknownProvider(f"no provider named {name!r}") from None


def handshake_of(provider: Provider) -> Handshake | None:
    """The provider's GET subscription check, if it has one."""
    return provider if hasattr(provider, "handshake") else None  # type: ignore[return-value]


def redactor_of(provider: Provider) -> Redacting | None:
    """The provider's redaction of secrets in its bodies, if it has one."""
    return provider if hasattr(provider, "redact") else None  # type: ignore[return-value]
