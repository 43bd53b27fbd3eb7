"""Run a Message Memory service as a real child process against the test stack."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from contracts.settings import Settings
from msgmem.localstack.processes import Child, env_with, file_sink
from msgmem.services import by_name


@contextmanager
def running(name: str, settings: Settings, log_dir: Path, **extra_env: str) -> Iterator[Child]:
    service = by_name(name)
    child = Child(
        name, service.argv(), ready_pattern=service.ready_pattern,
        env=env_with(service.env(settings) | extra_env), sink=file_sink(log_dir / f"{name}.log"),
    )
    child.start()
    try:
        child.wait_ready(90)
        yield child
    finally:
        child.stop()
