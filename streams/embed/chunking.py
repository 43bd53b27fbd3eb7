"""Cutting a text into overlapping token windows with the embedding model's own tokenizer.

Chunk ``i`` covers tokens ``[i * stride, min(i * stride + size, n))`` with ``stride = size -
overlap``: with the defaults (700, 140) chunks start at 0, 560, 1120, ..., each shares its
last 140 tokens with the next, and the last one ends at the token count. A text of at most
``size`` tokens is one chunk; an empty text none. At most ``max_chunks`` chunks are made;
``truncated`` says the text went on.

The tokenizer is the model's own (``runtime.tokenizer``).
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.tokenizer import Tokenizer


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def spans(token_count: int, size: int, overlap: int, max_chunks: int) -> tuple[list[Span], bool]:
    """The windows over ``token_count`` tokens and whether the text went past ``max_chunks`` of them."""
    if not 0 <= overlap < size:
        raise ValueError(f"overlap {overlap} must be in [0, size {size})")
    stride = size - overlap
    out: list[Span] = []
    start = 0
    while start < token_count and len(out) < max_chunks:
        end = min(start + size, token_count)
        out.append(Span(start, end))
        if end == token_count:
            return out, False
        start += stride
    return out, bool(out) and out[-1].end < token_count


@dataclass(frozen=True)
class TextChunk:
    index: int
    start_token: int
    end_token: int
    text: str


@dataclass(frozen=True)
class Chunked:
    token_count: int
    truncated: bool
    chunks: tuple[TextChunk, ...]


def chunk_text(text: str, tokenizer: Tokenizer, size: int, overlap: int, max_chunks: int) -> Chunked:
    tokens = tokenizer.encode(text)
    windows, truncated = spans(len(tokens), size, overlap, max_chunks)
    chunks = tuple(
        TextChunk(i, w.start, w.end, tokenizer.decode(tokens[w.start : w.end])) for i, w in enumerate(windows)
    )
    return Chunked(len(tokens), truncated, chunks)
