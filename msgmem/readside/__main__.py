"""``python -m msgmem.readside``: the recall service with the web console's pipeline page
(uvicorn on RECALL_HOST:RECALL_PORT; logs ``Application startup complete`` once it serves)."""

from __future__ import annotations

import uvicorn

from contracts.settings import Settings
from msgmem.readside import OperatorPipeline
from projections.recall.app import create_app
from runtime.logging_setup import configure_logging


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings, pipeline=OperatorPipeline(settings)), host=settings.recall_host,
        port=settings.recall_port, log_level=settings.log_level.lower(), access_log=False, proxy_headers=True,
    )  # fmt: skip


if __name__ == "__main__":
    main()
