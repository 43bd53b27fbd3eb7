"""The long-running processes of Message Memory, declared once.

`msgmem dev` runs each of these as a child process; `docker-compose.yml` has one service
per entry (a test keeps the two in step). Each runs as ``python -m <module>`` and reads
its configuration from the environment through ``contracts.settings.Settings``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    ready_pattern: str
    description: str

    def argv(self) -> list[str]:
        return [sys.executable, "-m", self.module]


SERVICES: tuple[Service, ...] = (
    Service("ingest", "ingest", r"Application startup complete", "verified webhooks appended to wa.raw"),
)
