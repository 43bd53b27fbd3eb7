"""`msgmem mcp` driven by the MCP SDK's own client over stdio: the server is spawned as
``python -m msgmem mcp`` against the test's DATABASE_URL, its tools are listed with their input
schemas, and each is called against rows the test wrote (the chat of ``test_memory_api``); bad
arguments come back as tool errors naming the field, never the value."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from contracts.settings import Settings
from projections.embeddings.vectors import register_vector
from tests.integration.test_memory_api import seed

pytestmark = pytest.mark.integration
FILES = "http://files.test/media"


def server(settings: Settings, home: Path) -> StdioServerParameters:
    env = {"DATABASE_URL": settings.database_url, "STATE_DIR": str(home), "OPENAI_API_KEY": "", "LOG_LEVEL": "INFO",
           "MEDIA_LOCAL_DIR": str(home / "media"), "MEDIA_SIGNING_KEY": "mcp-test-signing-key-0123456789abcdef",
           "MEDIA_LOCAL_URL_BASE": FILES}  # fmt: skip
    return StdioServerParameters(command=sys.executable, args=["-m", "msgmem", "mcp"], env=env, cwd=str(home))


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content  # type: ignore[no-any-return]


async def test_every_tool_over_stdio(settings: Settings, db: asyncpg.Connection, tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2, init=register_vector)
    try:
        seeded = await seed(pool, tmp_path / "media")
    finally:
        await pool.close()
    chat = seeded.chat
    async with Client(server(settings, tmp_path), read_timeout_seconds=60) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {"search_memory", "get_context", "list_chats", "get_messages"}
        assert tools["get_context"].input_schema["required"] == ["chat"]
        assert tools["get_messages"].input_schema["properties"]["limit"]["maximum"] == 200

        chats = await call(client, "list_chats", channel=chat.channel, phone="15550001234")
        assert [c["chat"] for c in chats["chats"]] == [chat.key]

        page = await call(client, "get_messages", chat=chat.key, limit=4)
        assert [m["id"] for m in page["messages"]] == [chat.mid(p) for p in ("pdf", "typo", "card", "refund")]
        older = await call(client, "get_messages", chat=chat.key, limit=2, before=page["older_cursor"])
        [image] = older["messages"][1]["media"]
        assert image["url"].startswith(f"{FILES}/") and "signature=" in image["url"]

        found = await call(client, "search_memory", chat=chat.key, query="order 4271", k=5)
        assert found["semantic"] == {"used": False, "reason": "OPENAI_API_KEY is not set"}
        assert {s["message_id"] for s in found["snippets"]} == {chat.mid("order"), chat.mid("refund")}

        context = await call(client, "get_context", chat=chat.key, window=3, max_tokens=2000)
        assert context["query_source"] == "latest_inbound" and context["recall_count"] == 1
        assert [m["role"] for m in context["messages"]] == ["system", "user", "user", "user"]
        assert context["messages"][-1]["content"] == "Can you refund order 4271?"

        secret = "4111-1111-1111-1111"
        refused = await client.call_tool("get_messages", {"chat": chat.key, "before": secret})
        assert refused.is_error and "before" in refused.content[0].text and secret not in refused.content[0].text
        too_many = await client.call_tool("get_messages", {"chat": chat.key, "limit": 10_000})
        assert too_many.is_error and "limit" in too_many.content[0].text and "10000" not in too_many.content[0].text
        unknown = await client.call_tool("get_context", {"chat": "whapi:NOPE:1"})
        assert unknown.is_error and "unknown chat" in unknown.content[0].text
