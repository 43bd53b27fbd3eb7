"""Where one provider's media may be fetched from, and where its credential may go.

Three rules, checked for every URL before it is requested (each redirect and Meta's answer
included); the fourth, public addresses only, is checked at connect time (``pinning``):

1. allow-list: the URL's origin is the provider's configured API origin, or its host is one of
   the provider's media hosts (``.example.com`` also admits subdomains).
2. https-443: the URL is https on port 443, unless its exact origin (scheme, host, port) is in
   MEDIA_TRUSTED_ORIGINS: an operator's self-hosted API on a private network, the tests' fakes.
3. credentials: the Bearer token or apikey goes to the API origin only (Meta's also to its
   media host, lookaside.fbsbx.com, on https:443), never to another media host; after a
   redirect to another origin it is dropped (``Fetcher``).

Pure: no I/O. Problems are texts naming the rule and the host, never the URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from contracts.origins import Origin, origin_of

# Hosts besides the API origin that receive the provider's credential (https, port 443 only).
CREDENTIAL_HOSTS = {"meta": ("lookaside.fbsbx.com",)}


def _host_listed(host: str, hosts: tuple[str, ...]) -> bool:
    return any(host == h or (h.startswith(".") and host.endswith(h)) for h in hosts)


@dataclass(frozen=True)
class ProviderAccess:
    """One provider's API base URL, its credential headers and the only places its media may come from.

    ``unset`` says why the provider's API cannot be used ("META_ACCESS_TOKEN is not set"); its
    media is then skipped unless a URL on ``media_hosts`` (which the operator listed) serves it.
    """

    base_url: str | None
    headers: dict[str, str] = field(default_factory=dict)
    media_hosts: tuple[str, ...] = ()
    unset: str | None = None
    credential_hosts: tuple[str, ...] = ()
    trusted_origins: frozenset[Origin] = frozenset()

    @property
    def api_origin(self) -> Origin | None:
        return origin_of(self.base_url) if self.base_url else None

    @property
    def hosts_only(self) -> ProviderAccess:
        """This access without the API's origin: what is left while the API is not configured."""
        return replace(self, base_url=None)

    def problem(self, url: str) -> str | None:
        """Which rule ``url`` breaks (allow-list, https-443), or None when it may be requested."""
        origin = origin_of(url)
        if origin is None:
            return "the allow-list admits http(s) URLs without user info only"
        scheme, host, port = origin
        if origin != self.api_origin and not _host_listed(host, self.media_hosts + self.credential_hosts):
            return f"{host} is not on the allow-list of media hosts"
        return self.transport_problem(origin)

    def transport_problem(self, origin: Origin) -> str | None:
        """Rule https-443 for an origin (the API's own too)."""
        scheme, host, port = origin
        if (scheme == "https" and port == 443) or origin in self.trusted_origins:
            return None
        return f"{host}:{port} over {scheme} breaks the https-on-port-443 rule (MEDIA_TRUSTED_ORIGINS lists exceptions)"

    def credentials_for(self, url: str) -> dict[str, str]:
        """The credential headers ``url`` may receive: the API origin's, and Meta's media host's."""
        origin = origin_of(url)
        if origin is None or not self.headers:
            return {}
        scheme, host, port = origin
        if origin == self.api_origin or (scheme == "https" and port == 443 and host in self.credential_hosts):
            return dict(self.headers)
        return {}
