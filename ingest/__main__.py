"""Run the ingest service: ``python -m ingest`` (uvicorn on INGEST_HOST:INGEST_PORT)."""

from __future__ import annotations

import logging

import uvicorn

from contracts.settings import Settings
from ingest.bootstrap import create_app


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
