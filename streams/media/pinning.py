"""Downloads connect only to public addresses, and to the very address that was checked.

``PinnedBackend`` is an httpcore network backend: when httpx opens a connection it resolves
the host once, refuses the connection unless every address the name resolves to is public
(``addresses.non_public``), then connects to the first of those checked addresses. The URL,
and so the Host header and the TLS SNI and certificate check, keep the name: nothing is
resolved a second time, so a name that answers a public address to the check and a private
one to the connection (DNS rebinding) gets nowhere. Exempt from the public check: the
(host, port) pairs of MEDIA_TRUSTED_ORIGINS (the https-443 rule keeps their scheme exact).

``pinned_client`` builds the media stage's httpx client on it: no environment proxies (a
proxy would resolve names itself), no redirects followed by httpx (``Fetcher`` follows them).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable

import httpcore
import httpx

from contracts.origins import Origin
from streams.media.addresses import non_public, parse

Resolver = Callable[[str, int], Awaitable[list[str]]]


class BlockedAddress(Exception):
    """The host resolves to an address downloads may not connect to; never retried."""

    def __init__(self, host: str, said: str) -> None:
        super().__init__(f"{host} {said}; rule: public addresses only")
        self.host = host


async def system_resolve(host: str, port: int) -> list[str]:
    """Every address of ``host`` (A and AAAA), in the resolver's order, once each."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class PinnedBackend(httpcore.AsyncNetworkBackend):
    def __init__(
        self, trusted: Iterable[Origin] = (), resolve: Resolver = system_resolve,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:  # fmt: skip
        self._trusted = {(host, port) for _scheme, host, port in trusted}
        self._resolve = resolve
        self._inner = inner or httpcore.AnyIOBackend()

    async def checked_address(self, host: str, port: int, timeout: float | None = None) -> str:
        """The address to connect to; raises ``BlockedAddress`` or ``httpcore.ConnectError``."""
        literal = parse(host)
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                addresses = await asyncio.wait_for(self._resolve(host, port), timeout)
            except (OSError, TimeoutError) as exc:
                raise httpcore.ConnectError(f"resolving {host}: {type(exc).__name__}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"resolving {host}: no address")
        if (host.lower(), port) not in self._trusted:
            for address in addresses:
                if (why := non_public(address)) is not None:
                    said = "is" if literal is not None else f"resolves to {address},"
                    raise BlockedAddress(host, f"{said} a non-public address ({why})")
        return addresses[0]

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:  # fmt: skip
        address = await self.checked_address(host, port, timeout)
        return await self._inner.connect_tcp(
            address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("a unix socket", "is not a public address")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (exception mapping, streaming) over a pool using ``PinnedBackend``.
    httpx takes no network backend, so the pool it builds is replaced by an equal one that does."""

    def __init__(self, backend: PinnedBackend, limits: httpx.Limits, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections, max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry, http1=True, http2=False, network_backend=backend,
        )  # fmt: skip


def pinned_client(
    trusted: Iterable[Origin], *, timeout: float, limits: httpx.Limits, resolve: Resolver = system_resolve,
    ssl_context: ssl.SSLContext | None = None,
) -> httpx.AsyncClient:  # fmt: skip
    transport = PinnedTransport(PinnedBackend(trusted, resolve), limits, ssl_context)
    return httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False, follow_redirects=False)
