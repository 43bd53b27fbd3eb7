"""Opt-out / opt-in keywords: does an inbound text change the contact's consent?

Only a message that *is* the keyword counts: case, surrounding whitespace, repeated
inner whitespace and trailing ``.``/``!`` are ignored, so " stop ", "Stop!" and "STOP"
match, while "please stop calling" or "don't stop" do not. A substring rule would opt
people out of conversations they are happily having; carriers and Meta's own opt-out
handling also match whole messages.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import Literal

DEFAULT_OPT_OUT_KEYWORDS: tuple[str, ...] = ("STOP", "UNSUBSCRIBE")
DEFAULT_OPT_IN_KEYWORDS: tuple[str, ...] = ("START",)

ConsentState = Literal["opted_out", "opted_in"]


def canonical(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.split()).strip(".!").strip()


@lru_cache(maxsize=64)
def _by_canonical(keywords: tuple[str, ...]) -> dict[str, str]:
    """Canonical form -> the keyword as configured (the first one listed wins)."""
    found: dict[str, str] = {}
    for kw in keywords:
        said = canonical(kw)
        if said:
            found.setdefault(said, kw)
    return found


def matching_keyword(text: str | None, keywords: Iterable[str]) -> str | None:
    """The keyword ``text`` consists of (as configured), or None."""
    if not text:
        return None
    said = canonical(text)
    return _by_canonical(tuple(keywords)).get(said) if said else None


def detect(
    text: str | None,
    opt_out_keywords: Iterable[str] = DEFAULT_OPT_OUT_KEYWORDS,
    opt_in_keywords: Iterable[str] = DEFAULT_OPT_IN_KEYWORDS,
) -> tuple[ConsentState, str] | None:
    """The new state and the keyword that set it. Opt-out wins if a keyword is in both lists.
    The text is folded once and looked up (every inbound text of the log passes here)."""
    if not text:
        return None
    said = canonical(text)
    if not said:
        return None
    if keyword := _by_canonical(tuple(opt_out_keywords)).get(said):
        return "opted_out", keyword
    if keyword := _by_canonical(tuple(opt_in_keywords)).get(said):
        return "opted_in", keyword
    return None


def consent_change(
    text: str | None,
    opt_out_keywords: Iterable[str] = DEFAULT_OPT_OUT_KEYWORDS,
    opt_in_keywords: Iterable[str] = DEFAULT_OPT_IN_KEYWORDS,
) -> ConsentState | None:
    found = detect(text, opt_out_keywords, opt_in_keywords)
    return found[0] if found else None
