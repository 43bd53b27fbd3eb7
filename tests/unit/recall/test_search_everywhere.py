"""The passage a hit across chats shows: short texts whole, a long one around the first word of
the question it holds."""

from __future__ import annotations

from projections.recall.search_everywhere import passage


def test_a_short_text_is_shown_whole() -> None:
    assert passage("Invoice attached", "invoice") == "Invoice attached"


def test_a_long_text_is_cut_around_the_first_word_it_holds() -> None:
    text = "lorem ipsum " * 200 + "INVOICE 2026-0193 total 41.50 " + "dolor sit " * 200
    shown = passage(text, "2026-0193", width=100)
    assert "INVOICE 2026-0193" in shown and shown.startswith("…") and shown.endswith("…")
    assert len(shown) <= 202


def test_a_long_text_without_the_words_shows_its_start() -> None:
    text = "x" * 1000
    assert passage(text, "courier", width=100) == "x" * 200 + "…"
