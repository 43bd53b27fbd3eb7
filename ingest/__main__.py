"""Run the ingest service: ``python -m ingest`` (uvicorn on INGEST_HOST:INGEST_PORT)."""

from __future__ import annotations

import uvicorn

from contracts.settings import Settings
from ingest.bootstrap import create_app
from runtime.logging_setup import configure_logging


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings, tune_gc=True),
        host=settings.ingest_host,
        port=settings.ingest_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
