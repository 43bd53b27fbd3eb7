"""`msgmem mcp`: the chat memory as MCP tools (the official MCP Python SDK), over stdio or
streamable HTTP.

Tools: ``search_memory``, ``get_context``, ``list_chats``, ``get_messages``. Each calls the
same function as the recall service's HTTP route (``projections.recall.memory``,
``projections.recall.search``), straight against DATABASE_URL: no HTTP hop, no second copy
of the logic. Arguments are checked by the same models as the HTTP parameters; a refusal is
a tool error naming the field and error type (``limit: less_than_equal``), never the value.

Over stdio the client owns the process and stdout carries the protocol (logs go to stderr).
Over HTTP (``--transport http``, MCP_HOST:MCP_PORT, path ``/mcp``) every request must carry
RECALL_API_KEY as ``Authorization: Bearer`` or ``X-API-Key``, compared in constant time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal, TypeVar

import asyncpg
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from contracts.settings import Settings
from projections.embeddings.vectors import register_vector
from projections.recall import memory
from projections.recall import request as checks
from projections.recall.cursor import InvalidCursor
from projections.recall.media_links import MediaLinks
from projections.recall.models import ChatPage, ContextAnswer, MessagePage, RecallAnswer, SemanticUse
from projections.recall.search import QueryEmbedder, RecallDisabled, UnknownChat, search
from runtime.embedder import make_embedder
from runtime.errors import TransientError
from runtime.media_storage import StorageError, build_store
from runtime.openai_client import ModelRejected, make_openai

log = logging.getLogger(__name__)
R = TypeVar("R")

INSTRUCTIONS = (
    "Memory of WhatsApp conversations. A chat is named by its key, provider:channel:chat id "
    "(list_chats finds them). get_context gives what to put before a reply: snippets recalled "
    "for a query, then the last messages, in OpenAI chat-message format within a token budget."
)


@dataclass
class Resources:
    pool: asyncpg.Pool
    embedder: QueryEmbedder | None
    config: memory.MemoryConfig
    links: MediaLinks


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    """The pool, the query embedder (None without OPENAI_API_KEY) and the media signer, closed after."""
    async with AsyncExitStack() as stack:
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4, init=register_vector,
                                         statement_cache_size=settings.statement_cache_size)  # fmt: skip
        stack.push_async_callback(pool.close)
        embedder = None
        client = make_openai(settings)
        if client is not None:
            stack.push_async_callback(client.close)
            embedder = make_embedder(settings, client, wait_seconds=0)
            stack.push_async_callback(embedder.aclose)
        store = None
        if settings.media_storage == "supabase":
            store = await build_store(settings, create_bucket=False)
            stack.push_async_callback(store.aclose)
        yield Resources(pool, embedder, memory.MemoryConfig.from_settings(settings),
                        MediaLinks.from_settings(settings, store))  # fmt: skip


async def answer(call: Callable[[], Awaitable[R]]) -> R:
    """``call()``, its refusals turned into tool errors that name fields and types, never values."""
    try:
        return await call()
    except checks.InvalidQuery as exc:
        raise ToolError(f"invalid arguments: {exc.reason}") from None
    except InvalidCursor as exc:
        raise ToolError(f"invalid arguments: {exc.reason}") from None
    except UnknownChat as exc:
        raise ToolError(f"unknown chat: {exc} (list_chats gives the keys)") from None
    except RecallDisabled as exc:
        raise ToolError(str(exc)) from None
    except (TransientError, ModelRejected, StorageError) as exc:
        raise ToolError(f"unavailable, try again later: {exc}") from None


def _checked(model: type[checks.M], **values: Any) -> checks.M:
    return checks.validated(model, {k: v for k, v in values.items() if v is not None})


ChatArg = Annotated[str, Field(description="the chat key, provider:channel:chat id (from list_chats)")]


def build_server(settings: Settings, resources: Callable[[], Resources]) -> MCPServer[Any]:
    """The MCP server; ``resources()`` gives the open pool and friends when a tool runs."""

    async def search_memory(
        chat: ChatArg, query: Annotated[str, Field(description="what to look for, in the chat's own words")],
        k: Annotated[int, Field(ge=1, le=50, description="most snippets")] = 10,
    ) -> RecallAnswer:  # fmt: skip
        """Search one chat's history by meaning and exact words (order numbers, names): the best
        snippets of typed text, voice-note transcripts, image descriptions and document text."""

        async def run() -> RecallAnswer:
            q = checks.validated(checks.RecallQuery, {"chat": chat, "q": query, "k": k})
            r = resources()
            found = await search(r.pool, r.embedder, q.chat, q.q, q.k, r.config.min_similarity, config=r.config.recall)
            return RecallAnswer(chat=q.chat, k=min(q.k, r.config.recall.limit), min_similarity=r.config.min_similarity,
                                by_meaning=found.semantic.used, semantic=SemanticUse(**asdict(found.semantic)),
                                snippets=found.snippets)  # fmt: skip

        return await answer(run)

    async def get_context(
        chat: ChatArg,
        query: Annotated[str | None, Field(description="what to recall; default: the contact's latest message")] = None,
        max_tokens: Annotated[int | None, Field(ge=1, le=1_000_000, description="token budget")] = None,
        window: Annotated[int | None, Field(ge=1, le=500, description="last messages shown")] = None,
    ) -> ContextAnswer:
        """What an agent should read before replying in a chat: recall snippets for the query,
        then the last messages (oldest first, role user or assistant), within max_tokens."""

        async def run() -> ContextAnswer:
            key = checks.validated(checks.ChatRef, {"chat": chat}).chat
            q = _checked(checks.ContextQuery, q=query, max_tokens=max_tokens, window=window)
            r = resources()
            return await memory.get_context(r.pool, r.embedder, key, q, r.config)

        return await answer(run)

    async def list_chats(
        provider: Annotated[str | None, Field(description="whapi, meta, evolution, ...")] = None,
        channel: Annotated[str | None, Field(description="the business channel id")] = None,
        phone: Annotated[str | None, Field(description="the contact's phone number")] = None,
        updated_since: Annotated[str | None, Field(description="ISO 8601 time: chats updated since")] = None,
        limit: Annotated[int, Field(ge=1, le=checks.PAGE_LIMIT)] = 50,
        cursor: Annotated[str | None, Field(description="next_cursor of the previous page")] = None,
    ) -> ChatPage:  # fmt: skip
        """The chats in memory, most recently updated first, filtered by provider, channel,
        contact phone or update time."""

        async def run() -> ChatPage:
            q = _checked(checks.ChatsQuery, provider=provider, channel=channel, phone=phone,
                         updated_since=updated_since, limit=limit, cursor=cursor)  # fmt: skip
            return await memory.list_chats(resources().pool, q)

        return await answer(run)

    async def get_messages(
        chat: ChatArg, limit: Annotated[int, Field(ge=1, le=checks.PAGE_LIMIT)] = 50,
        before: Annotated[str | None, Field(description="a cursor: the messages before it")] = None,
        after: Annotated[str | None, Field(description="a cursor: the messages after it")] = None,
    ) -> MessagePage:  # fmt: skip
        """A page of a chat's messages (the latest without a cursor), oldest first, with delivery
        statuses, reactions, media (short-lived signed URLs) and what the AI stages made of them."""

        async def run() -> MessagePage:
            key = checks.validated(checks.ChatRef, {"chat": chat}).chat
            q = _checked(checks.MessagesQuery, limit=limit, before=before, after=after)
            r = resources()
            return await memory.list_messages(r.pool, key, q, r.links)

        return await answer(run)

    tools = [_tool(fn) for fn in (search_memory, get_context, list_chats, get_messages)]
    return MCPServer("message-memory", instructions=INSTRUCTIONS, tools=tools, log_level=_level(settings))


def _tool(fn: Callable[..., Any]) -> Tool:
    """A tool whose argument errors name fields and types but never echo the arguments."""
    tool = Tool.from_function(fn)
    model: type[BaseModel] = tool.fn_metadata.arg_model
    model.model_config["hide_input_in_errors"] = True
    model.model_rebuild(force=True)
    return tool


def _level(settings: Settings) -> Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]:
    level = settings.log_level.upper()
    return level if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "INFO"  # type: ignore[return-value]


class RequireKey:
    """ASGI middleware: RECALL_API_KEY on every HTTP request (``projections.recall.request.refusal``)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            refused = checks.refusal(self.settings, headers)
            if refused is not None:
                log.warning("mcp request refused (401): %s", refused)
                body = JSONResponse({"error": "unauthorized", "reason": "unauthorized"}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
                await body(scope, receive, send)
                return
        await self.app(scope, receive, send)


def run(settings: Settings, transport: Literal["stdio", "http"]) -> int:
    """Serve until the client goes (stdio) or the process is stopped (http)."""
    import anyio
    import uvicorn

    held: list[Resources] = []

    def current() -> Resources:
        return held[0]

    server = build_server(settings, current)

    async def main() -> None:
        async with open_resources(settings) as resources:
            held.append(resources)
            if transport == "stdio":
                await server.run_stdio_async()
                return
            if settings.recall_api_key is None:
                log.warning("RECALL_API_KEY is not set: every MCP request is refused with 401")
            app = RequireKey(server.streamable_http_app(host=settings.mcp_host), settings)
            config = uvicorn.Config(app, host=settings.mcp_host, port=settings.mcp_port,
                                    log_level=settings.log_level.lower(), access_log=False)  # fmt: skip
            await uvicorn.Server(config).serve()

    anyio.run(main)
    return 0
