"""What production accepts as a secret. Pure functions; messages name settings, never values.

In production every configured secret must be at least ``MIN_SECRET_LENGTH`` characters and
must not be a placeholder (``changeme``, ``secret``, ``password``, ``test``, ``example``...,
alone, repeated or joined by separators), and ``DATABASE_URL`` must carry a password.
(An empty value is no secret at all: settings treat it as unset.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

MIN_SECRET_LENGTH = 32

PLACEHOLDER_WORDS = frozenset({
    "changeme", "change", "me", "secret", "password", "passwd", "pass", "test", "testing", "example", "sample",
    "placeholder", "dummy", "default", "token", "apikey", "api", "key", "your", "here", "replace", "todo", "fixme",
    "xxx", "x", "abc", "admin", "root", "postgres", "letmein", "qwerty", "foo", "bar", "dev", "local", "insecure",
})  # fmt: skip
_REPEATED = re.compile(rf"(?:{'|'.join(sorted(PLACEHOLDER_WORDS, key=len, reverse=True))})+")


def looks_like_placeholder(value: str) -> bool:
    """Made only of placeholder words and digits: ``changeme``, ``test-secret-123``,
    ``passwordpassword``, ``<your-token-here>``."""
    words = [w for w in re.split(r"[^a-z0-9]+", value.strip().lower()) if w]
    return not words or all(w.isdigit() or _REPEATED.fullmatch(w) for w in words)


def secret_problem(name: str, value: str) -> str | None:
    """Why ``value`` may not be the production secret of setting ``name`` (upper-case), or None."""
    if looks_like_placeholder(value):
        return f"{name} holds a placeholder value; production needs a real one"
    if len(value) < MIN_SECRET_LENGTH:
        return f"{name} is shorter than {MIN_SECRET_LENGTH} characters; production needs a longer one"
    return None


def database_url_has_password(url: str) -> bool:
    """A ``postgresql://user:password@host/db`` URL (or ``?password=``), or a libpq
    ``key=value`` string with ``password=``, carrying a non-empty password."""
    if "://" in url:
        parts = urlsplit(url)
        return bool(parts.password) or any(v.strip() for v in parse_qs(parts.query).get("password", []))
    return bool(re.search(r"(?:^|\s)password\s*=\s*(?:'[^']+'|[^\s']+)", url))


def production_problems(secrets: Iterable[tuple[str, str]], database_url: str) -> list[str]:
    """Every reason the production settings are refused (empty when they are fine)."""
    problems = [p for name, value in secrets if (p := secret_problem(name, value)) is not None]
    if not database_url_has_password(database_url):
        problems.append("DATABASE_URL has no password; production connects with one")
    return problems
