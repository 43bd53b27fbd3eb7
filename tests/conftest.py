from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from contracts.settings import Settings
from msgmem.localstack.stack import Stack, start_stack

FIXTURES = Path(__file__).parent / "fixtures"

PROJECTED_TABLES = (
    "message_embeddings", "chat_media", "chat_message_pending", "chat_message_versions", "chat_messages", "chats",
    "dead_letters", "projection_offsets",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--reverse", action="store_true", help="run the collected tests in reverse order")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--reverse``: a test that passes only after another (on its leftovers) fails this way."""
    if config.getoption("--reverse"):
        items.reverse()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A real Kafka broker and Postgres for the whole session. Failing to start fails the tests."""
    running = start_stack(tmp_path_factory.mktemp("stack"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def settings(stack: Stack) -> Settings:
    return stack.settings


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a database whose projected tables are empty at the start of the test."""
    conn = await asyncpg.connect(stack.settings.database_url)
    for attempt in range(5):
        try:
            await conn.execute(f"truncate {', '.join(PROJECTED_TABLES)}")
            break
        except asyncpg.DeadlockDetectedError:
            # A worker of the previous test may still be writing as it stops; Postgres picked
            # the truncate as the victim. Its locks are gone now: try again.
            if attempt == 4:
                raise
            await asyncio.sleep(0.5)
    try:
        yield conn
    finally:
        await conn.close()
