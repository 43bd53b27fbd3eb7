"""Run the recall API: ``python -m projections.recall`` (uvicorn on RECALL_HOST:RECALL_PORT).

Logs ``Application startup complete`` once it serves (with LOG_LEVEL at INFO or below).
"""

from __future__ import annotations

import uvicorn

from contracts.settings import Settings
from runtime.logging_setup import configure_logging
from projections.recall.app import create_app


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings), host=settings.recall_host, port=settings.recall_port,
        log_level=settings.log_level.lower(), access_log=False, proxy_headers=True,
    )  # fmt: skip


if __name__ == "__main__":
    main()
