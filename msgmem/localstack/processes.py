"""Child processes with prefixed logs, readiness by log line, and a clean stop.

Children are started with a parent-death signal (Linux), so even if the supervisor is
killed outright no broker, database or worker outlives it.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

LineSink = Callable[[str], None]

_PR_SET_PDEATHSIG = 1


class ChildFailed(RuntimeError):
    """A child exited, or did not become ready in time. The message carries its last log lines."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stdout_sink(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def file_sink(path: Path) -> LineSink:
    handle = path.open("a", buffering=1, encoding="utf-8")
    return lambda line: handle.write(line + "\n")


def _die_with_parent(sig: int) -> Callable[[], None]:
    def preexec() -> None:
        if sys.platform.startswith("linux"):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)

    return preexec


class Child:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        ready_pattern: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
        death_signal: int = signal.SIGTERM,
        sink: LineSink = stdout_sink,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self._ready_re = re.compile(ready_pattern) if ready_pattern else None
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._user = user
        self._stop_signal = stop_signal
        self._death_signal = death_signal
        self._sink = sink
        self._tail: deque[str] = deque(maxlen=60)
        self._ready = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> "Child":
        self._proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self._env,
            cwd=self._cwd,
            user=self._user,
            preexec_fn=_die_with_parent(self._death_signal),
        )
        if self._ready_re is None:
            self._ready.set()
        self._pump = threading.Thread(target=self._pump_lines, name=f"log-{self.name}", daemon=True)
        self._pump.start()
        return self

    def _pump_lines(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        prefix = f"[{self.name}] "
        for raw in self._proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            self._tail.append(line)
            self._sink(prefix + line)
            if self._ready_re is not None and not self._ready.is_set() and self._ready_re.search(line):
                self._ready.set()

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def is_ready(self) -> bool:
        """Whether the readiness line has been seen (or there is none to wait for)."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if not self.running():
                raise ChildFailed(self._describe(f"exited with code {self.returncode} before it was ready"))
            if time.monotonic() > deadline:
                raise ChildFailed(self._describe(f"was not ready after {timeout:.0f}s"))

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def stop(self, timeout: float = 20.0) -> None:
        """Ask the child to stop, then kill it (and its process group) if it does not."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            self._join_pump()
            return
        try:
            proc.send_signal(self._stop_signal)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        except ProcessLookupError:
            pass
        self._join_pump()

    def kill(self) -> None:
        """SIGKILL, then reap it: the child gets no chance to shut down cleanly."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                proc.kill()
            except ProcessLookupError:
                pass
            proc.wait(10)
        self._join_pump()

    def _join_pump(self) -> None:
        if self._pump is not None:
            self._pump.join(timeout=2)

    def _describe(self, what: str) -> str:
        tail = "\n".join(self._tail) or "(no output)"
        return f"{self.name} {what}; last output:\n{tail}"


def stop_all(children: Sequence[Child], timeout: float = 20.0) -> None:
    """Stop in reverse start order: workers first, then the services they depend on."""
    for child in reversed(children):
        child.stop(timeout)


def env_with(overrides: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    return env
