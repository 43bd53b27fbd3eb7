"""Which IP addresses a media download may connect to: public ones only.

``non_public(address)`` names why an address is not public ("loopback", "private",
"link-local", ...) or returns None. IPv6 forms that carry an IPv4 address (IPv4-mapped
``::ffff:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, 6to4 ``2002:AABB:CCDD::``, NAT64
``64:ff9b::a.b.c.d``, Teredo) are judged by that IPv4 address too, so ``[::ffff:127.0.0.1]``
is loopback. Pure: no I/O, unit-tested directly.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: local-use translation
_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible addresses
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)


def parse(text: str) -> IPv4Address | IPv6Address | None:
    """The address in ``text`` (brackets and an IPv6 zone allowed), or None when it is a name."""
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def non_public(address: IPv4Address | IPv6Address | str) -> str | None:
    """Why ``address`` is not a public unicast address, or None when it is."""
    ip = parse(address) if isinstance(address, str) else address
    if ip is None:
        return "not an IP address"
    if isinstance(ip, IPv6Address):
        embedded, form = _embedded_ipv4(ip)
        if embedded is not None:
            why = _category(embedded)
            return f"{form} {why}" if why else None
    return _category(ip)


def _embedded_ipv4(ip: IPv6Address) -> tuple[IPv4Address | None, str]:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    if ip.teredo is not None:
        return ip.teredo[1], "Teredo"
    if ip in _NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    if ip in _COMPATIBLE and int(ip) > 1:  # :: and ::1 are judged as IPv6 (unspecified, loopback)
        return IPv4Address(int(ip) & 0xFFFFFFFF), "IPv4-compatible"
    return None, ""


def _category(ip: IPv4Address | IPv6Address) -> str | None:
    checks = (
        (ip.is_unspecified, "unspecified"), (ip.is_loopback, "loopback"), (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"), (isinstance(ip, IPv4Address) and ip in _SHARED, "shared (CGNAT)"),
        (isinstance(ip, IPv6Address) and ip in _NAT64_LOCAL, "reserved"),
        (ip.is_reserved, "reserved"), (ip.is_private, "private"), (not ip.is_global, "not global"),
    )  # fmt: skip
    return next((name for hit, name in checks if hit), None)
