"""The recall API's edges without Postgres: the API key (Bearer or X-API-Key, 401 otherwise),
switched-off recall, embedding failures, parameters and the response shape."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts.embeddings import encode_vector
from contracts.settings import Settings
from projections.recall.app import create_app
from projections.recall.search import RecallConfig
from runtime.errors import TransientError

KEY = "recall-test-key"
ROW = {
    "message_id": "m1", "chunk_index": 0, "source": "transcript", "chunk_text": "the parcel came late",
    "start_token": 0, "end_token": 5, "similarity": 0.71, "score": 0.03, "by_meaning": True, "by_words": False,
    "provider_timestamp": datetime(2026, 11, 20, 9, 15, tzinfo=UTC), "sender_id": "15550001234",
    "sender_name": "Dana Silva", "direction": "inbound", "message_type": "voice",
}  # fmt: skip


class FakePool:
    def __init__(self, *, known: bool = True, embedded: bool = True) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.chat = {"known": known, "embedded": embedded}

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any]:
        return self.chat

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        self.calls.append(args)
        return [ROW]


class FakeEmbedder:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls = 0

    async def embed(self, texts: list[str], tokens: list[int]) -> list[str]:
        self.calls += 1
        if self.error:
            raise self.error
        return [encode_vector([0.5, 0.5]) for _ in texts]


def client_for(embedder: Any = None, pool: FakePool | None = None, **overrides: Any) -> tuple[TestClient, FakePool]:
    settings = Settings(_env_file=None, recall_api_key=KEY, **overrides)  # type: ignore[call-arg]
    pool = pool or FakePool()
    embedder = FakeEmbedder() if embedder is None else embedder
    return TestClient(create_app(settings, pool=pool, embedder=embedder or None)), pool  # type: ignore[arg-type]


@pytest.fixture
def api() -> Iterator[tuple[TestClient, FakePool]]:
    client, pool = client_for()
    with client:
        yield client, pool


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}, {"Authorization": f"Basic {KEY}"},
     {"Authorization": "Bearer "}],
)  # fmt: skip
def test_a_wrong_or_missing_key_is_401(api: tuple[TestClient, FakePool], headers: dict[str, str]) -> None:
    client, pool = api
    answer = client.get("/chats/whapi:CH:1/recall", params={"q": "delivery"}, headers=headers)
    assert answer.status_code == 401 and answer.json()["error"] == "unauthorized"
    assert answer.headers["www-authenticate"] == "Bearer" and pool.calls == []


def test_without_a_configured_key_everything_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    client = TestClient(create_app(Settings(_env_file=None), pool=FakePool(), embedder=FakeEmbedder()))  # type: ignore[call-arg, arg-type]
    with client:
        answer = client.get("/chats/c/recall", params={"q": "x"}, headers={"Authorization": "Bearer "})
    assert answer.status_code == 401 and answer.json() == {"error": "unauthorized", "reason": "unauthorized"}
    assert "RECALL_API_KEY is not set" in caplog.text  # the reason goes to the log only


@pytest.mark.parametrize("headers", [{"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}])
def test_the_key_as_bearer_or_header_recalls(api: tuple[TestClient, FakePool], headers: dict[str, str]) -> None:
    client, pool = api
    answer = client.get("/chats/whapi:CH:15550001234/recall", params={"q": "delivery", "k": 500}, headers=headers)
    assert answer.status_code == 200
    body = answer.json()
    assert body["k"] == 50 and body["min_similarity"] == 0.3 and body["by_meaning"] is True
    assert body["semantic"] == {"used": True, "reason": None}
    [snippet] = body["snippets"]
    assert snippet == {
        "message_id": "m1", "chunk_index": 0, "source": "transcript", "text": "the parcel came late", "start_token": 0,
        "end_token": 5, "similarity": 0.71, "score": 0.03, "matched": "meaning", "occurred_at": "2026-11-20T09:15:00+00:00",
        "sender_id": "15550001234", "sender_name": "Dana Silva", "direction": "inbound", "message_type": "voice",
    }  # fmt: skip
    [args] = pool.calls
    assert args[0] == "whapi:CH:15550001234" and args[2] == "delivery" and args[-1] == 50  # k capped at the limit


def test_parameters_are_checked(api: tuple[TestClient, FakePool]) -> None:
    client, _ = api
    auth = {"X-API-Key": KEY}
    assert client.get("/chats/c/recall", headers=auth).status_code == 422
    assert client.get("/chats/c/recall", params={"q": "x", "k": 0}, headers=auth).status_code == 422
    assert client.get("/chats/c/recall", params={"q": "x", "min_similarity": 2}, headers=auth).status_code == 422


@pytest.mark.parametrize("overrides", [{"enable_vector_recall": False}, {"embeddings_recall_limit": 0}])
def test_switched_off_recall_says_so(overrides: dict[str, Any]) -> None:
    client, pool = client_for(**overrides)
    with client:
        answer = client.get("/chats/c/recall", params={"q": "x"}, headers={"X-API-Key": KEY})
    assert answer.status_code == 503 and answer.json()["error"] == "recall_disabled"
    assert ("ENABLE_VECTOR_RECALL" if "enable_vector_recall" in overrides else "EMBEDDINGS_RECALL_LIMIT") in answer.json()["reason"]
    assert pool.calls == []


def test_an_unavailable_embeddings_api_is_503_with_retry_after() -> None:
    client, _ = client_for(FakeEmbedder(TransientError("embeddings: HTTP 429", retry_after=3)))
    with client:
        answer = client.get("/chats/c/recall", params={"q": "x"}, headers={"X-API-Key": KEY})
    assert answer.status_code == 503 and answer.json()["error"] == "embeddings_unavailable"
    assert answer.headers["retry-after"] == "3"


def test_health_and_metrics(api: tuple[TestClient, FakePool]) -> None:
    client, _ = api
    client.get("/chats/c/recall", params={"q": "x"})
    assert client.get("/healthz").json() == {"status": "alive"}
    assert 'msgmem_recall_requests_total{outcome="unauthorized"} 1.0' in client.get("/metrics").text


def test_an_unknown_chat_is_404_without_its_key_in_the_answer() -> None:
    client, pool = client_for(pool=FakePool(known=False))
    with client:
        answer = client.get("/chats/whapi:CH:15550009999/recall", params={"q": "x"}, headers={"X-API-Key": KEY})
    assert answer.status_code == 404 and answer.json() == {"error": "unknown_chat", "reason": "no chat has this key"}
    assert pool.calls == []


def test_without_openai_api_key_words_only_and_the_answer_says_why() -> None:
    client, pool = client_for(embedder=False)  # no embedder given: built from settings, which have no key
    with client:
        answer = client.get("/chats/c/recall", params={"q": "order 4271"}, headers={"X-API-Key": KEY})
    body = answer.json()
    assert answer.status_code == 200 and body["by_meaning"] is False
    assert body["semantic"] == {"used": False, "reason": "OPENAI_API_KEY is not set"}
    [args] = pool.calls
    assert args[1] is None and args[2] == "order 4271"  # no query vector: the word lists alone


def test_a_chat_without_embeddings_is_not_embedded_for_and_says_so() -> None:
    embedder = FakeEmbedder()
    client, pool = client_for(embedder, pool=FakePool(embedded=False))
    with client:
        body = client.get("/chats/c/recall", params={"q": "x"}, headers={"X-API-Key": KEY}).json()
    assert body["semantic"] == {"used": False, "reason": "no message of this chat has embeddings yet"}
    assert embedder.calls == 0 and pool.calls[0][1] is None


@pytest.mark.parametrize(("key", "reason"), [(None, "OPENAI_API_KEY is not set"), ("", "OPENAI_API_KEY is not set"),
                                             ("sk-test", "no query embedder was given")])  # fmt: skip
def test_the_reason_for_no_embedder_comes_from_settings(key: str | None, reason: str) -> None:
    settings = Settings(_env_file=None, openai_api_key=key)  # type: ignore[call-arg]
    assert RecallConfig.from_settings(settings).without_embedder == reason
