"""Failure injection shared by the fakes: rules matched per request, each used a number of times."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class Fault:
    """Answer ``status`` (with ``retry_after`` when set) after ``delay`` seconds, ``times`` times
    (None: always), to requests whose path starts with ``path`` and that concern ``sha256``/``key``."""

    status: int = 500
    times: int | None = 1
    retry_after: float | None = None
    delay: float = 0.0
    path: str | None = None
    sha256: str | None = None
    key: str | None = None
    used: int = 0

    def matches(self, path: str, sha256: str | None, key: str | None) -> bool:
        if self.times is not None and self.used >= self.times:
            return False
        if self.path is not None and not path.startswith(self.path):
            return False
        if self.sha256 is not None and self.sha256 != sha256:
            return False
        return self.key is None or self.key == key


@dataclass
class Call:
    path: str
    at: float
    status: int
    model: str | None = None
    sha256: str | None = None
    key: str | None = None
    detail: dict[str, object] = field(default_factory=dict)


class Faults:
    def __init__(self) -> None:
        self._rules: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._rules.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, path: str, sha256: str | None = None, key: str | None = None) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(path, sha256, key):
                    rule.used += 1
                    return rule
        return None


class CallLog:
    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._lock = threading.Lock()

    def record(self, call: Call) -> Call:
        with self._lock:
            self._calls.append(call)
        return call

    def __call__(self, path_prefix: str = "", *, ok_only: bool = False) -> list[Call]:
        with self._lock:
            calls = list(self._calls)
        return [c for c in calls if c.path.startswith(path_prefix) and (not ok_only or c.status < 300)]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()


def now() -> float:
    return time.monotonic()
