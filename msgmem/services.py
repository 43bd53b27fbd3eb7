"""The processes `msgmem dev` runs, one child each: the declarations in ``contracts.processes``."""

from __future__ import annotations

from contracts.processes import ALL as SERVICES
from contracts.processes import Process as Service
from contracts.processes import by_name

__all__ = ["SERVICES", "Service", "by_name"]
