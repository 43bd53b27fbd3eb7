"""The memory API's HTTP routes, thin: each validates its parameters (``projections.recall.request``)
and returns what a function of ``projections.recall.memory`` answers; exception handlers turn
the errors into JSON refusals (``{"error": ..., "reason": ...}``).

- ``GET /chats``: filters provider, channel, phone, updated_since; ``limit``, ``cursor``;
- ``GET /chats/{chat}``: consent, the customer-service window, counts;
- ``GET /chats/{chat}/messages``: ``limit``, ``before`` or ``after`` a cursor;
- ``GET /chats/{chat}/context``: ``q``, ``max_tokens``, ``window``, ``k``;
- ``GET /media/{path}?expires=&signature=``: a local media file, for whoever holds its signed URL.

The first four need RECALL_API_KEY (``guard``, solved before any parameter is read); a
refusal is ``401 unauthorized``, its reason only in the log. Then ``422 invalid_query``
names the fields and error types, never the values; ``404 unknown_chat``; ``503
storage_unavailable`` when the media store cannot sign. Nothing of a query is logged.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter

from contracts.settings import Settings
from projections.recall import memory
from projections.recall import request as checks
from projections.recall.cursor import InvalidCursor
from projections.recall.media_links import MediaLinks
from projections.recall.models import ChatDetail, ChatPage, ContextAnswer, ErrorBody, MessagePage
from projections.recall.search import UnknownChat
from runtime.media_storage import StorageError

log = logging.getLogger(__name__)

ChatPath = Annotated[checks.ChatKey, Path(description="the chat key, provider:channel:chat id (chats.chat_key)")]

REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "no or wrong RECALL_API_KEY"},
    422: {"model": ErrorBody, "description": "a parameter out of range or not text (names the field)"},
}
UNKNOWN: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "no chat has this key"}}


class Unauthorized(Exception):
    """The request may not read memory; ``reason`` is for the log only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def error(status: int, code: str, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "reason": reason}, status_code=status, headers=headers)


def memory_router(settings: Settings, registry: CollectorRegistry) -> tuple[APIRouter, dict[type, Any]]:
    """The routes, and the exception handlers the app must install for them."""
    requests = Counter("msgmem_memory_requests", "Memory API requests, by route and outcome", ["route", "outcome"],
                       registry=registry)  # fmt: skip

    def counted(request: Request, outcome: str) -> None:
        route = request.scope.get("route")
        requests.labels(getattr(route, "path", "other"), outcome).inc()

    def guard(request: Request) -> None:
        """The key first (strangers learn nothing), then a query string that is UTF-8 throughout."""
        refused = checks.refusal(settings, request.headers)
        if refused is not None:
            raise Unauthorized(refused)
        checks.query_params(request.scope["query_string"])

    router = APIRouter(dependencies=[Depends(guard)], responses=REFUSALS, tags=["memory"])

    @router.get("/chats", response_model=ChatPage)
    async def chats(request: Request, query: Annotated[checks.ChatsQuery, Query()]) -> ChatPage:
        """Chats, most recently updated first, filtered by provider, channel, contact phone or update time."""
        page = await memory.list_chats(request.app.state.pool, query)
        counted(request, "ok")
        return page

    @router.get("/chats/{chat}", response_model=ChatDetail, responses=UNKNOWN)
    async def chat(request: Request, chat: ChatPath) -> ChatDetail:
        """One chat: consent, the 24-hour customer-service window and message counts."""
        detail = await memory.chat_detail(request.app.state.pool, chat)
        counted(request, "ok")
        return detail

    @router.get("/chats/{chat}/messages", response_model=MessagePage, responses=UNKNOWN | {
        503: {"model": ErrorBody, "description": "the media store could not sign a URL"}})  # fmt: skip
    async def messages(request: Request, chat: ChatPath, query: Annotated[checks.MessagesQuery, Query()]) -> MessagePage:
        """A page of messages, oldest first, with statuses, reactions, media (signed URLs) and enrichment."""
        page = await memory.list_messages(request.app.state.pool, chat, query, request.app.state.links,
                                          own_base=str(request.base_url))  # fmt: skip
        counted(request, "ok")
        return page

    @router.get("/chats/{chat}/context", response_model=ContextAnswer, responses=UNKNOWN)
    async def context(request: Request, chat: ChatPath, query: Annotated[checks.ContextQuery, Query()]) -> ContextAnswer:
        """An agent's context: recall snippets for q, then the last messages, in OpenAI chat format within max_tokens."""
        answer = await memory.get_context(request.app.state.pool, request.app.state.embedder, chat, query,
                                          request.app.state.memory_config)  # fmt: skip
        counted(request, "ok")
        return answer

    async def unauthorized(request: Request, exc: Exception) -> Response:
        counted(request, "unauthorized")
        log.warning("memory request refused (401): %s", exc)
        return error(401, "unauthorized", "unauthorized", {"WWW-Authenticate": "Bearer"})

    async def invalid(request: Request, exc: Exception) -> Response:
        counted(request, "invalid")
        if isinstance(exc, RequestValidationError):
            reason = checks.problems(list(exc.errors()), skip=("query", "path"))
        else:
            reason = getattr(exc, "reason", "invalid_query")
        return error(422, "invalid_query", reason)

    async def unknown(request: Request, exc: Exception) -> Response:
        counted(request, "unknown_chat")
        return error(404, "unknown_chat", str(exc))

    async def storage(request: Request, exc: Exception) -> Response:
        counted(request, "storage_unavailable")
        return error(503, "storage_unavailable", str(exc))

    handlers = {Unauthorized: unauthorized, RequestValidationError: invalid, checks.InvalidQuery: invalid,
                InvalidCursor: invalid, UnknownChat: unknown, StorageError: storage}  # fmt: skip
    return router, handlers


def media_router(links_of: Any) -> APIRouter:
    """``GET /media/{path}``: a local store's file for a valid, unexpired signature (no API key:
    the signed URL is the credential). Anything else is a bare 404."""
    router = APIRouter(tags=["media"])

    @router.get("/media/{path:path}", response_class=FileResponse, responses={
        200: {"description": "the file", "content": {"application/octet-stream": {}}},
        404: {"model": ErrorBody, "description": "no such file, or a bad or expired signature"}})  # fmt: skip
    async def media_file(
        request: Request, path: str, expires: Annotated[int, Query(ge=0, le=2**53)],
        signature: Annotated[str, Query(pattern=r"^[0-9a-f]{64}$")],
    ) -> Response:  # fmt: skip
        links: MediaLinks = links_of(request)
        try:
            found = links.local_object(path, expires, signature)
        except OSError:
            found = None
        if found is None:
            return error(404, "not_found", "not_found")
        file, content_type = found
        return FileResponse(file, media_type=content_type, headers={
            "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox", "Cache-Control": "private"})

    return router


def install(app: FastAPI, settings: Settings, registry: CollectorRegistry) -> None:
    router, handlers = memory_router(settings, registry)
    app.include_router(router)
    app.include_router(media_router(lambda request: request.app.state.links))
    for exc_type, handler in handlers.items():
        app.add_exception_handler(exc_type, handler)
