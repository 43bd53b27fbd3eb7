"""Whether a FastAPI app serves its OpenAPI document: ``FastAPI(..., **docs_urls(settings))``.

Production serves neither /openapi.json nor /docs unless SERVE_OPENAPI=true (the document
maps every route for whoever asks); elsewhere both are served unless SERVE_OPENAPI=false.
"""

from __future__ import annotations

from contracts.settings import Settings


def docs_urls(settings: Settings) -> dict[str, str | None]:
    served = settings.openapi_served
    return {"openapi_url": "/openapi.json" if served else None, "docs_url": "/docs" if served else None,
            "redoc_url": None}  # fmt: skip
