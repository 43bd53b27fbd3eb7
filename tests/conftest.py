from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest

from contracts.settings import Settings
from msgmem.localstack.stack import Stack, start_stack
from runtime.kafka import delete_topics, ensure_topics
from runtime.logging_setup import reset_logging

FIXTURES = Path(__file__).parent / "fixtures"

PROJECTED_TABLES = (
    "message_embeddings", "chat_media", "chat_message_pending", "chat_message_versions", "chat_consent_changes",
    "chat_messages", "chats",
    "dead_letters", "projection_offsets", "erasures", "retention_cutoffs",
    "message_embedding_sources", "message_embedding_deletions",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--reverse", action="store_true", help="run the collected tests in reverse order")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Logging configured by an in-process service (ingest's app) would write its last
    summaries at exit to pytest's capture stream, closed by then."""
    reset_logging()


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


def private(base: Settings) -> Settings:
    """``base`` with every topic and consumer group under a prefix no other test uses."""
    own = f"t{uuid.uuid4().hex[:10]}-"
    return base.model_copy(update={"kafka_topic_prefix": own, "kafka_group_prefix": f"{own}msgmem-"})


@pytest.fixture(scope="session")
def janitor(stack: Stack) -> Iterator[ThreadPoolExecutor]:
    """Deletes finished tests' topics in the background (the broker takes ~0.5 s per test's
    set, which no test needs to wait for); done before the stack stops."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="topic-janitor") as pool:
        yield pool


@pytest.fixture
async def settings(stack: Stack, janitor: ThreadPoolExecutor) -> AsyncIterator[Settings]:
    """The stack's settings for this test alone: its topics (KAFKA_TOPIC_PREFIX) created empty
    and deleted after, its consumer groups (KAFKA_GROUP_PREFIX) new, so no test reads another's
    records or resumes another's offsets, whatever the order."""
    mine = private(stack.settings)
    await ensure_topics(mine)
    try:
        yield mine
    finally:
        janitor.submit(asyncio.run, delete_topics(mine))


@pytest.fixture(scope="module")
def module_settings(stack: Stack, janitor: ThreadPoolExecutor) -> Iterator[Settings]:
    """As ``settings``, shared by one module's tests (a module that runs its pipeline once)."""
    mine = private(stack.settings)
    asyncio.run(ensure_topics(mine))
    try:
        yield mine
    finally:
        janitor.submit(asyncio.run, delete_topics(mine))


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
