"""HTTP routes: thin. Each reads the body, hands it to the service, and answers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingest import providers
from ingest.errors import Forbidden, UnknownProvider
from ingest.service import IngestService

router = APIRouter()


async def get_service(request: Request) -> IngestService:
    """Async on purpose: FastAPI runs sync dependencies in a thread pool."""
    return request.app.state.service


ServiceDep = Annotated[IngestService, Depends(get_service)]


def _accepted(delivery_id: str) -> JSONResponse:
    return JSONResponse({"status": "accepted", "delivery_id": delivery_id})


@router.post("/webhooks/{provider_name}")
async def receive_webhook(provider_name: str, request: Request, service: ServiceDep) -> JSONResponse:
    delivery = await service.receive(provider_name, request.headers, request.stream())
    return _accepted(delivery.delivery_id)


@router.get("/webhooks/{provider_name}", response_class=PlainTextResponse)
async def confirm_subscription(provider_name: str, request: Request, service: ServiceDep) -> str:
    provider = providers.get(provider_name)
    check = providers.handshake_of(provider)
    if check is None:
        raise UnknownProvider(f"{provider_name} has no subscription check")
    try:
        return check.handshake(service.settings, request.query_params)
    except Forbidden as exc:
        service.reject(provider_name, exc)
        raise


@router.post("/events/outbound")
async def record_outbound(request: Request, service: ServiceDep) -> JSONResponse:
    delivery = await service.receive(None, request.headers, request.stream())
    return _accepted(delivery.delivery_id)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/readyz")
async def readyz(service: ServiceDep) -> JSONResponse:
    ready = service.publisher.ready()
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics(service: ServiceDep) -> Response:
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
