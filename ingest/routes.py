"""HTTP routes: thin. Each reads the body, hands it to the service, and answers.

The two delivery endpoints are plain Starlette routes (``DELIVERY_ROUTES``): FastAPI's
per-request parameter solving cost a webhook more CPU than verifying and appending it, and
they take nothing but the path, headers and body. The rest are ordinary FastAPI routes.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.routing import Route

from ingest import providers
from ingest.errors import Forbidden, MethodNotAllowed
from ingest.service import IngestService

router = APIRouter()


def service_of(request: Request) -> IngestService:
    """The app's service. Read directly, not through ``Depends``: on the webhook hot path
    FastAPI's dependency solver cost more than the rest of the route."""
    return request.app.state.service


def _accepted(delivery_id: str) -> Response:
    return Response(orjson.dumps({"status": "accepted", "delivery_id": delivery_id}), media_type="application/json")


async def receive_webhook(request: Request) -> Response:
    """POST /webhooks/{provider_name}: a provider's delivery."""
    delivery = await service_of(request).receive(request.path_params["provider_name"], request.headers, request.stream())
    return _accepted(delivery.delivery_id)


async def record_outbound(request: Request) -> Response:
    """POST /events/outbound: a message the business sent (``contracts.outbound.OutboundMessage``)."""
    delivery = await service_of(request).receive(None, request.headers, request.stream())
    return _accepted(delivery.delivery_id)


async def post_only(_request: Request) -> Response:
    """GET on the outbound endpoint: 405 with a reason, as the webhook routes answer."""
    raise MethodNotAllowed("outbound events are POSTed")


DELIVERY_ROUTES = [
    Route("/webhooks/{provider_name}", receive_webhook, methods=["POST"]),
    Route("/events/outbound", record_outbound, methods=["POST"]),
    Route("/events/outbound", post_only, methods=["GET"]),
]


@router.get("/webhooks/{provider_name}", response_class=PlainTextResponse)
async def confirm_subscription(provider_name: str, request: Request) -> str:
    """A provider's subscription check (Meta's); on any other provider's route GET is 405."""
    service = service_of(request)
    provider = service.provider(provider_name)
    check = providers.handshake_of(provider)
    if check is None:
        raise MethodNotAllowed(f"{provider_name} deliveries are POSTed; it has no GET subscription check")
    try:
        return check.handshake(service.settings, request.query_params)
    except Forbidden as exc:
        service.reject(provider_name, exc)
        raise


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    ready = service_of(request).publisher.ready()
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(generate_latest(service_of(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)
