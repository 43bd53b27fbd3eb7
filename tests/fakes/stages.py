"""Run an enrichment or media stage as a real worker process against the test stack.

Like tests/services.running, but for stages not (yet) in msgmem.services.SERVICES. The child
runs in ``log_dir`` so Faust's data directory lands there, not in the work tree.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from contracts.processes import NORMALIZE
from contracts.settings import Settings
from msgmem.localstack.processes import Child, env_with, file_sink

READY = r"\[\^Worker\]: Ready"


@contextmanager
def running_stage(module: str, settings: Settings, log_dir: Path, **env: str) -> Iterator[Child]:
    name = module.rsplit(".", 1)[-1]
    base = NORMALIZE.env(settings) | {"STATE_DIR": str(log_dir / "state")}  # every stage takes the same variables
    child = Child(
        name, [sys.executable, "-m", module], ready_pattern=READY, env=env_with(base | env),
        cwd=log_dir, sink=file_sink(log_dir / f"{name}.log"),
    )
    child.start()
    try:
        child.wait_ready(90)
        yield child
    finally:
        child.stop()
