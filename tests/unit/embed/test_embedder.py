"""The batching embedder: concurrent callers share API calls within the limits, repeated texts cost
nothing, a failed call fails its callers (who then retry), and the OpenAI adapter against the fake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from contracts.embeddings import decode_vector, encode_vector
from contracts.settings import Settings
from msgmem.localstack.http_server import serving
from runtime.errors import TransientError
from runtime.embedder import BatchingEmbedder, EmbedUsage, OpenAIEmbeddings, _shares, make_embedder
from runtime.openai_client import ModelRejected, make_openai
from tests.fakes.openai_api import FakeOpenAI
from tests.unit.embed.factory import Recorder


async def test_concurrent_callers_share_calls_of_at_most_max_inputs() -> None:
    call = Recorder()
    embedder = BatchingEmbedder(call, cache_key="m/2", max_inputs=4, wait_seconds=0.01)
    results = await asyncio.gather(*(embedder.embed([f"text {i}", f"more {i}"], [2, 2]) for i in range(5)))
    assert [len(b) for b in call.batches] == [4, 4, 2]
    assert sorted(t for b in call.batches for t in b) == sorted(f"{w} {i}" for i in range(5) for w in ("text", "more"))
    assert [list(decode_vector(r[0])) for r in results] == [[6.0, 1.0]] * 5  # each caller gets its own, in order


async def test_the_token_limit_splits_calls() -> None:
    call = Recorder()
    embedder = BatchingEmbedder(call, cache_key="m/2", max_inputs=100, max_tokens=1000, wait_seconds=0.01)
    await embedder.embed([f"t{i}" for i in range(5)], [400] * 5)
    assert [len(b) for b in call.batches] == [2, 2, 1]


async def test_repeated_and_concurrent_identical_texts_are_embedded_once() -> None:
    call = Recorder()
    embedder = BatchingEmbedder(call, cache_key="m/2", wait_seconds=0.01)
    first, second = await asyncio.gather(embedder.embed(["ok", "thanks"], [1, 1]), embedder.embed(["ok"], [1]))
    assert call.batches == [["ok", "thanks"]] and first[0] == second[0]
    await embedder.embed(["thanks", "ok"], [1, 1])
    assert len(call.batches) == 1  # from memory


async def test_the_cache_is_bounded() -> None:
    call = Recorder()
    embedder = BatchingEmbedder(call, cache_key="m/2", wait_seconds=0, cache_entries=2)
    for text in ("a", "b", "c", "a"):
        await embedder.embed([text], [1])
    assert [b[0] for b in call.batches] == ["a", "b", "c", "a"]


async def test_a_failed_call_fails_every_caller_and_a_retry_goes_through() -> None:
    call = Recorder(fail=[TransientError("HTTP 429", retry_after=2)])
    embedder = BatchingEmbedder(call, cache_key="m/2", wait_seconds=0.01)
    results = await asyncio.gather(embedder.embed(["a"], [1]), embedder.embed(["b"], [1]), return_exceptions=True)
    assert all(isinstance(r, TransientError) and r.retry_after == 2 for r in results)
    assert len(await embedder.embed(["a", "b"], [1, 1])) == 2
    assert call.batches == [["a", "b"], ["a", "b"]]


async def test_each_caller_is_charged_its_share_of_the_calls_and_tokens() -> None:
    call = Recorder()  # reports one token a word
    embedder = BatchingEmbedder(call, cache_key="m/2", max_inputs=3, wait_seconds=0.01)
    (_, a), (_, b) = await asyncio.gather(
        embedder.embed_counted(["one two three", "four five"], [3, 2]), embedder.embed_counted(["six", "seven"], [1, 1])
    )
    assert [len(batch) for batch in call.batches] == [3, 1]
    assert (a.calls + b.calls, a.input_tokens + b.input_tokens) == (2, 7)  # the sums are what was paid
    assert a == EmbedUsage(calls=1, input_tokens=5) and b == EmbedUsage(calls=1, input_tokens=2)
    _, again = await embedder.embed_counted(["six", "eight"], [1, 1])
    assert again == EmbedUsage(calls=1, input_tokens=1, cache_hits=1)  # "six" came from memory


def test_a_calls_tokens_are_shared_by_token_counts() -> None:
    assert _shares(10, [1, 1, 1]) == [4, 3, 3] and sum(_shares(7, [5, 2, 9])) == 7
    assert _shares(None, [5, 2]) == [5, 2]  # the server said nothing: our own counts


@pytest.fixture
async def fake_api() -> AsyncIterator[tuple[FakeOpenAI, Settings]]:
    fake = FakeOpenAI()
    async with serving(fake.app) as url:
        yield fake, Settings(_env_file=None, openai_api_key=fake.api_key, openai_base_url=f"{url}/v1",
                             openai_timeout_seconds=2, embeddings_dimensions=256)  # type: ignore[call-arg]  # fmt: skip


async def test_openai_adapter_asks_for_the_dimensions_and_keeps_base64(fake_api: tuple[FakeOpenAI, Settings]) -> None:
    fake, settings = fake_api
    client = make_openai(settings)
    assert client is not None
    try:
        embedder = make_embedder(settings, client, wait_seconds=0)
        [delivery, late, invoice] = await embedder.embed(
            ["the delivery was late", "late delivery again", "invoice total"], [4, 3, 2]
        )
        vectors = [decode_vector(v) for v in (delivery, late, invoice)]
        assert all(len(v) == 256 for v in vectors)
        dot = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731
        assert dot(vectors[0], vectors[1]) > 0.3 > abs(dot(vectors[0], vectors[2]))  # shared words: similar
        [call] = fake.calls("/v1/embeddings")
        assert call.model == "text-embedding-3-small" and call.detail == {"inputs": 3}
        answer = await OpenAIEmbeddings(client, settings.embeddings_model, 256)(["a b c", "d"])
        assert answer.input_tokens == 4  # the API's usage.prompt_tokens

        fake.fail(status=429, retry_after=1.5, path="/v1/embeddings")
        with pytest.raises(TransientError) as caught:
            await OpenAIEmbeddings(client, settings.embeddings_model, 256)(["x"])
        assert caught.value.retry_after == 1.5
        wrong = make_openai(settings.model_copy(update={"openai_api_key": SecretStr("wrong")}))
        assert wrong is not None
        with pytest.raises(ModelRejected, match="401"):
            await OpenAIEmbeddings(wrong, settings.embeddings_model, 256)(["x"])
        await wrong.close()
    finally:
        await client.close()
