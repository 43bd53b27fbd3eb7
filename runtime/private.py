"""Local data only its owner can read: the state dir, the local stack, media, Faust's tables.

``private_umask()`` makes everything a process creates from then on owner-only (umask 077,
inherited by its children: Kafka, Postgres, the services); ``private_dir(path)`` creates a
directory, and each missing parent, with mode 0700. A directory that already exists keeps
its mode (an operator's volume may not be ours to change); ``msgmem dev`` tightens its own
state dir.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_UMASK = 0o077
PRIVATE_DIR_MODE = 0o700


def private_umask() -> int:
    """Set umask 077 for this process (and the children it starts); return the previous one."""
    return os.umask(PRIVATE_UMASK)


def private_dir(path: Path) -> Path:
    """``path`` as an existing directory; what is created of it (the leaf and missing
    parents) is created with mode 0700."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
        directory.chmod(PRIVATE_DIR_MODE)  # mkdir's mode is filtered by the umask
    return path
