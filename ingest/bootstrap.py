"""Composition root of the ingest service: builds the app and its adapters from settings."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from contracts.settings import Settings
from ingest import providers
from ingest.errors import Forbidden, IngestError, MethodNotAllowed, Unauthorized
from ingest.metrics import IngestMetrics
from ingest.providers.base import Provider
from ingest.providers.declarative import DeclarativeProvider
from ingest.publisher import KafkaPublisher, Publisher
from ingest.routes import DELIVERY_ROUTES, router
from ingest.service import IngestService
from runtime.gc_tuning import settle_gc
from runtime.openapi import docs_urls

log = logging.getLogger(__name__)


def create_app(settings: Settings, publisher: Publisher | None = None, *, tune_gc: bool = False) -> FastAPI:
    """The ingest app. ``publisher`` defaults to Kafka; tests of HTTP edges may pass a fake.

    ``tune_gc`` (the service process sets it) tunes the garbage collector for serving
    once start-up is done (``runtime.gc_tuning``); tests leave their process alone.
    """
    metrics = IngestMetrics()
    registry = providers.registry(settings)  # a bad mapping file stops start-up here

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        chosen = publisher if publisher is not None else KafkaPublisher(settings)
        app.state.service = IngestService(settings, chosen, metrics, registry)
        _warn_unconfigured(settings, registry)
        await chosen.start()
        if tune_gc:
            settle_gc()
        try:
            yield
        finally:
            await chosen.stop()

    app = FastAPI(title="Message Memory ingest", lifespan=lifespan, **docs_urls(settings))
    app.router.routes.extend(DELIVERY_ROUTES)
    app.include_router(router)

    @app.exception_handler(IngestError)
    async def ingest_error(_request: Request, exc: IngestError) -> JSONResponse:
        headers = {}
        if exc.retry_later:
            headers["Retry-After"] = str(settings.ingest_retry_after_seconds)
        elif isinstance(exc, MethodNotAllowed):
            headers["Allow"] = "POST"
        # Why a credential was refused is for the log (IngestService.reject), not for whoever sent it.
        reason = exc.outcome if isinstance(exc, Unauthorized | Forbidden) else exc.reason
        return JSONResponse({"error": exc.outcome, "reason": reason}, status_code=exc.status_code, headers=headers)

    return app


def _warn_unconfigured(settings: Settings, registry: Mapping[str, Provider]) -> None:
    missing = [
        name for name, value in (
            ("WHAPI_TOKEN", settings.whapi_token),
            ("META_APP_SECRET", settings.meta_app_secret),
            ("META_VERIFY_TOKEN", settings.meta_verify_token),
            ("EVOLUTION_API_KEY", settings.evolution_api_key),
            ("INGEST_API_KEY", settings.ingest_api_key),
        ) if value is None
    ] + [
        p.mapping.auth.secret_env for p in registry.values() if isinstance(p, DeclarativeProvider) and not p.configured
    ]
    if missing:
        log.warning("not set, so the matching deliveries are refused with 401: %s", ", ".join(missing))
