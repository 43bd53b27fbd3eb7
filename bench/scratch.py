"""A benchmark's working directory (broker and Postgres data, logs): removed when the run
succeeds, since a pipeline run leaves over a gigabyte; kept, and named, when it fails."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    except BaseException:
        print(f"kept for inspection: {work}")
        raise
    shutil.rmtree(work, ignore_errors=True)
