"""Web origins (scheme, host, port) of http(s) URLs: what MEDIA_TRUSTED_ORIGINS lists and
what the media stage's rules compare (``streams.media.access``). Pure."""

from __future__ import annotations

from urllib.parse import urlsplit

Origin = tuple[str, str, int]  # scheme, lower-case host (IPv6 without brackets), port


def origin_of(url: str) -> Origin | None:
    """The origin of an http(s) URL without user info, or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


def parse_origin(text: str) -> Origin:
    """``scheme://host[:port]`` (no path, query or user info) -> its origin; raises ValueError."""
    origin = origin_of(text.strip())
    rest = urlsplit(text.strip())
    if origin is None or rest.path not in ("", "/") or rest.query or rest.fragment:
        raise ValueError("an origin is scheme://host[:port], http or https, without path or user info")
    return origin


def describe(origin: Origin) -> str:
    """``("http", "::1", 8080)`` -> ``http://[::1]:8080``."""
    scheme, host, port = origin
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
