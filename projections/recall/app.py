"""The recall API: ``GET /chats/{chat}/recall?q=...&k=...&min_similarity=...``.

Protected by RECALL_API_KEY, given as ``Authorization: Bearer <key>`` or ``X-API-Key``
and compared in constant time, before the query is looked at; a wrong or missing key (or
no RECALL_API_KEY configured) is ``401 unauthorized``, the reason only in the log. Then
``422 invalid_query`` for parameters out of range or text with NUL, control characters or
noncharacters (``projections.recall.request``; the reason names fields, never values).
Answers ``200`` with the snippets (``projections.recall.search.Snippet``) best first and
``"semantic": {"used": ..., "reason": ...}`` (why it did not rank by meaning);
``404 unknown_chat`` when no chat has the key; ``503 recall_disabled`` when
ENABLE_VECTOR_RECALL=false or EMBEDDINGS_RECALL_LIMIT=0; ``503 embeddings_unavailable``
(with Retry-After when the API gave one) or ``502
embeddings_rejected`` when the query could not be embedded. ``k`` is capped at
EMBEDDINGS_RECALL_LIMIT; ``min_similarity`` defaults to RECALL_MIN_SIMILARITY. Without
OPENAI_API_KEY recall runs on exact words alone over every message text (``"semantic":
{"used": false, "reason": "OPENAI_API_KEY is not set"}``; ``by_meaning`` says the same).

The memory API beside it (``projections.recall.routes``): ``GET /chats``, ``/chats/{chat}``,
``/chats/{chat}/messages``, ``/chats/{chat}/context`` and signed local media at ``/media/{path}``.

The web console for operators under ``/console`` (``projections.recall.console``).

``GET /healthz`` (alive), ``GET /metrics`` (Prometheus). The query text is never logged.
/docs and /openapi.json only where SERVE_OPENAPI allows (not in production by default).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from contracts.settings import Settings
from runtime.openapi import docs_urls
from projections.embeddings.vectors import register_vector
from projections.recall import request as recall_request
from projections.recall import console, routes
from projections.recall.admin import admin_router
from projections.recall.media_links import MediaLinks
from projections.recall.memory import MemoryConfig
from projections.recall.models import ErrorBody, RecallAnswer
from projections.recall.search import QueryEmbedder, RecallConfig, RecallDisabled, UnknownChat, search
from runtime.media_storage import build_store
from runtime.errors import TransientError
from runtime.embedder import EmbedMetrics, make_embedder
from runtime.openai_client import ModelRejected, make_openai

log = logging.getLogger(__name__)


class RecallMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("msgmem_recall_requests", "Recall requests, by outcome", ["outcome"],
                                registry=self.registry)  # fmt: skip
        self.seconds = Histogram(
            "msgmem_recall_seconds", "Time to answer a recall (query embedding included)", registry=self.registry,
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
        )  # fmt: skip
        self.embed = EmbedMetrics(self.registry, "recall")


_QUERY_PARAMETERS = [
    {"name": "q", "in": "query", "required": True, "schema": {"type": "string", "minLength": 1, "maxLength": 4000}},
    {"name": "k", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 10}},
    {"name": "min_similarity", "in": "query", "schema": {"type": "number", "minimum": -1, "maximum": 1}},
]


def create_app(
    settings: Settings, *, pool: asyncpg.Pool | None = None, embedder: QueryEmbedder | None = None,
    pipeline: console.Pipeline | None = None,
) -> FastAPI:  # fmt: skip
    """The recall app. ``pool`` / ``embedder`` default to DATABASE_URL and the OpenAI client (tests may pass theirs);
    ``pipeline``: what the web console's pipeline page shows (``msgmem.readside`` passes one)."""
    config = RecallConfig.from_settings(settings)
    metrics = RecallMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as resources:
            app.state.pool = pool
            if pool is None:
                app.state.pool = await asyncpg.create_pool(
                    settings.database_url, min_size=1, max_size=8, init=register_vector,
                    statement_cache_size=settings.statement_cache_size,
                )  # fmt: skip
                resources.push_async_callback(app.state.pool.close)
            if pipeline is not None and hasattr(pipeline, "aclose"):  # its clients, kept open between views
                resources.push_async_callback(pipeline.aclose)
            app.state.memory_config = MemoryConfig.from_settings(settings)
            store = None
            if settings.media_storage == "supabase":  # signs its own URLs; a local store's are signed here
                store = await build_store(settings, create_bucket=False)
                resources.push_async_callback(store.aclose)
            app.state.links = MediaLinks.from_settings(settings, store)
            app.state.embedder = embedder
            if embedder is None:
                client = make_openai(settings)
                if client is not None:
                    resources.push_async_callback(client.close)
                    built = make_embedder(settings, client, metrics=metrics.embed, wait_seconds=0)
                    resources.push_async_callback(built.aclose)
                    app.state.embedder = built
                else:
                    log.warning("%s: recall finds exact words only", config.without_embedder)
            if config.disabled_reason:
                log.warning("%s", config.disabled_reason)
            if settings.recall_api_key is None:
                log.warning("RECALL_API_KEY is not set: every recall is refused with 401")
            yield

    app = FastAPI(title="Message Memory recall", lifespan=lifespan, **docs_urls(settings))

    @app.get("/chats/{chat}/recall", openapi_extra={"parameters": _QUERY_PARAMETERS}, tags=["recall"], responses={
        200: {"model": RecallAnswer}, **routes.REFUSALS, **routes.UNKNOWN,
        502: {"model": ErrorBody, "description": "the embeddings API refused the query"},
        503: {"model": ErrorBody, "description": "recall switched off, or the embeddings API unavailable"}})  # fmt: skip
    async def recall_route(request: Request, chat: str) -> Response:
        refused = recall_request.refusal(settings, request.headers)  # the key first: strangers learn nothing
        if refused is not None:
            metrics.requests.labels("unauthorized").inc()
            log.warning("recall refused (401): %s", refused)
            return routes.error(401, "unauthorized", "unauthorized", {"WWW-Authenticate": "Bearer"})
        try:
            query = recall_request.parse(chat, request.scope["query_string"])
        except recall_request.InvalidQuery as exc:
            metrics.requests.labels("invalid").inc()
            return routes.error(422, "invalid_query", exc.reason)
        started = time.perf_counter()
        threshold = settings.recall_min_similarity if query.min_similarity is None else query.min_similarity
        embedder_now: QueryEmbedder | None = request.app.state.embedder
        try:
            answer = await search(request.app.state.pool, embedder_now, query.chat, query.q, query.k, threshold,
                                  config=config)  # fmt: skip
        except UnknownChat as exc:
            metrics.requests.labels("unknown_chat").inc()
            return routes.error(404, "unknown_chat", str(exc))
        except RecallDisabled as exc:
            metrics.requests.labels("disabled").inc()
            return routes.error(503, "recall_disabled", str(exc))
        except TransientError as exc:
            metrics.requests.labels("embeddings_unavailable").inc()
            headers = {"Retry-After": f"{max(1, round(exc.retry_after))}"} if exc.retry_after is not None else None
            return routes.error(503, "embeddings_unavailable", str(exc), headers)
        except ModelRejected as exc:
            metrics.requests.labels("embeddings_rejected").inc()
            return routes.error(502, "embeddings_rejected", str(exc))
        metrics.seconds.observe(time.perf_counter() - started)
        metrics.requests.labels("ok").inc()
        body: dict[str, Any] = {
            "chat": query.chat, "k": min(query.k, config.limit), "min_similarity": threshold,
            "by_meaning": answer.semantic.used, "semantic": asdict(answer.semantic),
            "snippets": [s.to_json() for s in answer.snippets],
        }  # fmt: skip
        return JSONResponse(body)

    routes.install(app, settings, metrics.registry)
    app.include_router(admin_router(settings))
    console.install(app, settings, pipeline)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/metrics")
    async def metrics_page() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
