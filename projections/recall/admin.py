"""The recall service's /admin routes, on ADMIN_API_KEY (its own key: reading memory is not
erasing it). ``POST /admin/erasures`` appends an ErasureRequested and answers with the receipt
once the erasures projector has applied it (``runtime.erasures``): ``200`` and the receipt,
``202`` with the erasure id when it is on the ledger but not applied within
ERASURE_WAIT_SECONDS, ``401`` for a missing or wrong key (checked before the body is read),
``422`` naming fields and error types, never values."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contracts.erasure import SubjectError
from contracts.errors import describe_error
from contracts.settings import Settings
from projections.recall import request as checks
from projections.recall.routes import error
from runtime import erasures

log = logging.getLogger(__name__)


class ErasureBody(BaseModel):
    """Exactly one of ``chat`` (a chat key) or ``phone``; ``reason`` holds no personal data."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    chat: Annotated[str | None, Field(min_length=1, max_length=1000)] = None
    phone: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    reason: Annotated[str | None, Field(max_length=500)] = None
    by: Annotated[str, Field(min_length=1, max_length=100)] = "admin-api"

    @model_validator(mode="after")
    def _one_subject(self) -> "ErasureBody":
        if (self.chat is None) == (self.phone is None):
            raise ValueError("exactly one of chat or phone")
        return self


def admin_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["admin"])

    @router.post("/admin/erasures")
    async def erase_route(request: Request) -> JSONResponse:
        refused = checks.admin_refusal(settings, request.headers)
        if refused is not None:
            log.warning("admin request refused (401): %s", refused)
            return error(401, "unauthorized", "unauthorized", {"WWW-Authenticate": "Bearer"})
        try:
            body = ErasureBody.model_validate_json(await request.body())
            kind, value = ("chat", body.chat) if body.chat is not None else ("phone", body.phone)
            event = erasures.new_request(kind, value or "", by=body.by, reason=body.reason)
        except (ValidationError, SubjectError) as exc:
            return error(422, "invalid_erasure", describe_error(exc))
        await erasures.append(settings, event)
        log.info("erasure %s requested", event.erasure_id)
        try:
            receipt = await erasures.wait_for(settings, event.erasure_id)
        except erasures.ErasureTimeout:
            return JSONResponse({"erasure_id": event.erasure_id, "status": "pending"}, status_code=202)
        return JSONResponse({"status": "completed", **receipt.to_json()})

    return router
