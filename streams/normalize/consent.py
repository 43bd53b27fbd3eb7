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
from typing import Literal

DEFAULT_OPT_OUT_KEYWORDS: tuple[str, ...] = ("STOP", "UNSUBSCRIBE")
DEFAULT_OPT_IN_KEYWORDS: tuple[str, ...] = ("START",)

ConsentState = Literal["opted_out", "opted_in"]


def canonical(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.split()).strip(".!").strip()


def matching_keyword(text: str | None, keywords: Iterable[str]) -> str | None:
    """The keyword ``text`` consists of (as configured), or None."""
    if not text:
        return None
    said = canonical(text)
    return next((kw for kw in keywords if said and canonical(kw) == said), None)


def detect(
    text: str | None,
    opt_out_keywords: Iterable[str] = DEFAULT_OPT_OUT_KEYWORDS,
    opt_in_keywords: Iterable[str] = DEFAULT_OPT_IN_KEYWORDS,
) -> tuple[ConsentState, str] | None:
    """The new state and the keyword that set it. Opt-out wins if a keyword is in both lists."""
    if keyword := matching_keyword(text, opt_out_keywords):
        return "opted_out", keyword
    if keyword := matching_keyword(text, opt_in_keywords):
        return "opted_in", keyword
    return None


def consent_change(
    text: str | None,
    opt_out_keywords: Iterable[str] = DEFAULT_OPT_OUT_KEYWORDS,
    opt_in_keywords: Iterable[str] = DEFAULT_OPT_IN_KEYWORDS,
) -> ConsentState | None:
    found = detect(text, opt_out_keywords, opt_in_keywords)
    return found[0] if found else None
