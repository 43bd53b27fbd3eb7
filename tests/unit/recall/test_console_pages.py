"""The web console's edges that need no Postgres: the login rate limit (429 with Retry-After)
and input it cannot take answered with an HTML page, while the memory API keeps its JSON 422."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts.settings import Settings
from projections.recall.app import create_app
from projections.recall.console.session import LOGIN_FAILURES

CONSOLE_KEY = "console-unit-key-0123456789abcdef"
SESSION_KEY = "console-unit-session-key-0123456789abcdef"
RECALL_KEY = "recall-unit-key"


class NoPool:
    """Every page tested here answers before asking Postgres anything."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the pool was used ({name})")


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = Settings(_env_file=None, recall_api_key=RECALL_KEY, console_api_key=CONSOLE_KEY,  # type: ignore[call-arg]
                        console_session_key=SESSION_KEY)  # fmt: skip
    with TestClient(create_app(settings, pool=NoPool(), embedder=None), base_url="http://127.0.0.1") as c:  # type: ignore[arg-type]
        yield c


def token(client: TestClient) -> str:
    page = client.get("/console/login")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert page.status_code == 200 and found
    return found.group(1)


def log_in(client: TestClient, key: str = CONSOLE_KEY) -> Any:
    return client.post("/console/login", data={"csrf": token(client), "key": key}, follow_redirects=False)


def test_failed_logins_from_one_client_are_refused_with_429_and_retry_after(client: TestClient) -> None:
    for _ in range(LOGIN_FAILURES):
        wrong = log_in(client, "not-the-key")
        assert wrong.status_code == 303 and wrong.headers["location"] == "/console/login?failed=1"
    refused = log_in(client, "not-the-key")
    assert refused.status_code == 429 and refused.headers["content-type"].startswith("text/html")
    assert 1 <= int(refused.headers["retry-after"]) <= 60 and "Too many failed log-ins" in refused.text
    right = log_in(client)  # even the right key waits: the limit does not tell which guess was right
    assert right.status_code == 429 and "mm_console=" not in right.headers.get("set-cookie", "")
    assert client.get("/console/login").status_code == 200  # the form itself still shows


def test_a_successful_login_forgets_earlier_failures(client: TestClient) -> None:
    for _ in range(LOGIN_FAILURES - 1):
        assert log_in(client, "not-the-key").status_code == 303
    assert log_in(client).headers["location"] == "/console/"
    for _ in range(LOGIN_FAILURES - 1):
        assert log_in(client, "not-the-key").status_code == 303  # counting from zero again


@pytest.mark.parametrize("path", [
    "/console/?q=" + "x" * 5000,  # longer than a query may be
    "/console/?provider=%01",  # a control character
    "/console/?after=not-a-cursor",
    "/console/chats/whapi%3ACH%3A%01",  # a chat key that is not one
    "/console/chats/whapi%3ACH%3A1/search?q=" + "x" * 5000,
])  # fmt: skip
def test_input_the_console_cannot_take_is_an_html_page_not_json(client: TestClient, path: str) -> None:
    assert log_in(client).status_code == 303
    answer = client.get(path)
    assert answer.status_code == 400 and answer.headers["content-type"].startswith("text/html")
    assert "The console cannot read this address" in answer.text and "invalid_query" not in answer.text
    assert answer.headers["content-security-policy"].startswith("default-src 'self'")


def test_without_a_session_malformed_input_still_asks_for_the_login(client: TestClient) -> None:
    answer = client.get("/console/?q=" + "x" * 5000, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/login"


def test_the_memory_api_keeps_its_json_422(client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {RECALL_KEY}"}
    for path in ("/chats?limit=0", "/chats?cursor=not-a-cursor", "/chats/c/messages?before=x&after=y",
                 "/chats/c/recall?q=x&k=0"):  # fmt: skip
        answer = client.get(path, headers=auth)
        assert answer.status_code == 422 and answer.json()["error"] == "invalid_query", path


class ShownPipeline:
    """A pipeline page's data as the read side would give it on a second view."""

    async def view(self) -> Any:
        from datetime import UTC, datetime

        from projections.recall.console.pipeline import Erasure, Lag, PipelineView, Policy

        at = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
        return PipelineView(
            lags=[Lag("normalize", "wa.raw", 0, 90, 100, 10)], letters=[], rates={"normalize": 12.5},
            retention=[Policy("MESSAGE_RETENTION_DAYS", "MESSAGE_RETENTION_DAYS: keep forever")],
            erasures=[Erasure("er-1", "phone", at, at, 2, 41, 3)],
        )

    async def retry(self, letter_id: str, by: str) -> Any:
        return None


def test_the_pipeline_page_shows_rates_retention_and_privacy_requests() -> None:
    from projections.recall.console.pipeline import consumption_rates

    settings = Settings(_env_file=None, recall_api_key=RECALL_KEY, console_api_key=CONSOLE_KEY,  # type: ignore[call-arg]
                        console_session_key=SESSION_KEY)  # fmt: skip
    app = create_app(settings, pool=NoPool(), embedder=None, pipeline=ShownPipeline())  # type: ignore[arg-type]
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert log_in(c).status_code == 303
        page = c.get("/console/pipeline")
    assert page.status_code == 200
    assert re.search(r"<td>normalize</td><td>10</td>\s*<td class=\"rate\">12\.5</td>", page.text)
    assert "MESSAGE_RETENTION_DAYS: keep forever" in page.text
    assert re.search(r"er-1</td><td>phone</td>.*<td>2</td><td>41</td><td>3</td>", page.text, re.S)

    assert consumption_rates(None, (10.0, {"normalize": 5})) == {}
    assert consumption_rates((10.0, {"normalize": 5, "projector": 9}), (12.0, {"normalize": 25, "projector": 3})) == {
        "normalize": 10.0  # a sum that went back (a group reset) gets no rate
    }
