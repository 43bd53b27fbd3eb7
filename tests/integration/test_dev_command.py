"""`msgmem dev` brings the whole local stack up, writes its state file, restarts a child
that was killed (a service, Postgres), and leaves nothing running after Ctrl-C."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from contracts.topics import ALL_TOPICS

pytestmark = pytest.mark.integration


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


class _Lines:
    """Reads a child's output on a thread so the test can wait for a line with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(proc,), daemon=True).start()

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, marker: str, timeout: float, *also: str, since: int | None = None) -> str:
        """The next line holding ``marker`` (and each of ``also``); with ``since``, the lines
        already read from that index on count too."""
        for line in self.seen[since:] if since is not None else ():
            if marker in line and all(m in line for m in also):
                return line
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if marker in line and all(m in line for m in also):
                return line
        raise AssertionError(f"no {(marker, *also)!r} within {timeout}s; output:\n" + self.tail())

    def tail(self) -> str:
        return "\n".join(self.seen[-60:])


def _readable_by_others(root: Path) -> list[Path]:
    """Files and directories under ``root`` with any group or other permission bit."""
    found = []
    for path in root.rglob("*"):
        try:
            if not path.is_symlink() and path.stat().st_mode & 0o077:
                found.append(path)
        except FileNotFoundError:  # a broker's segment rolled meanwhile
            continue
    return found


def _state_pid(state_file: Path, name: str, other_than: int, timeout: float) -> int:
    """The pid the state file gives ``name`` once it is no longer ``other_than``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = json.loads(state_file.read_text())["processes"][name]
        if pid != other_than:
            return pid
        time.sleep(0.2)
    raise AssertionError(f"the state file still gives {name} pid {other_than} after {timeout}s")


@pytest.mark.timeout(600)  # one stack for both checks; a restarted Faust worker rejoins its group in ~60 s
async def test_dev_comes_up_restarts_killed_children_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    state_dir = tmp_path / "dev-state"
    env = dict(os.environ) | {
        "STATE_DIR": str(state_dir),
        "LOCAL_KAFKA_PORT": "0",
        "LOCAL_POSTGRES_PORT": "0",
        "INGEST_PORT": "0",
        "RECALL_PORT": "0",
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "msgmem.cli", "dev"], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines = _Lines(proc)
    try:
        line = lines.wait_for("state file:", 180)
        state_file = Path(line.split("state file:", 1)[1].strip())
        state = json.loads(state_file.read_text())
        assert state_file.parent == state_dir
        # Owner-only (umask 077): the state file's secrets, Kafka's and Postgres's data. As
        # root, the embedded Postgres runs as a system user of its own, and its wheel opens
        # the folders above its data to others so that user can reach them.
        as_root = os.geteuid() == 0
        assert as_root or state_dir.stat().st_mode & 0o777 == 0o700
        assert state_file.stat().st_mode & 0o777 == 0o600
        assert [p for p in _readable_by_others(state_dir) if not (as_root and "postgres" in p.parts)] == []
        assert set(state) >= {"ingest_url", "database_url", "kafka_bootstrap_servers", "processes"}

        conn = await asyncpg.connect(state["database_url"])
        try:
            assert await conn.fetchval("select count(*) from schema_migrations") >= 1
        finally:
            await conn.close()
        admin = AIOKafkaAdminClient(bootstrap_servers=state["kafka_bootstrap_servers"])
        await admin.start()
        try:
            assert {t.name for t in ALL_TOPICS} <= set(await admin.list_topics())
        finally:
            await admin.close()

        fixture = Path(__file__).parents[1] / "fixtures" / "webhooks" / "meta_cloud" / "text.json"
        sent = subprocess.run(
            [sys.executable, "-m", "msgmem.cli", "send", str(fixture), "--provider", "meta"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )
        assert sent.returncode == 0 and sent.stdout.startswith("200 "), sent.stdout + sent.stderr

        import httpx

        health = httpx.get(state["recall_url"] + "/healthz", timeout=10)
        assert health.status_code == 200

        # A service killed outright is started again, and the state file follows it.
        killed = state["processes"]["normalize"]
        before_kill = len(lines.seen)
        os.kill(killed, signal.SIGKILL)
        lines.wait_for("[dev] normalize exited (signal SIGKILL); restarting in 1s (restart 1)", 30)
        restarted = _state_pid(state_file, "normalize", killed, 30)
        assert restarted != killed and Path(f"/proc/{restarted}").exists()

        # So is Postgres, on the same port and data, while normalize rejoins its group.
        postgres_pid = state["processes"]["postgres"]
        os.kill(postgres_pid, signal.SIGKILL)
        lines.wait_for("[dev] postgres exited (signal SIGKILL); restarting in 1s (restart 1)", 30)
        lines.wait_for("[dev] postgres is back", 60)
        assert _state_pid(state_file, "postgres", postgres_pid, 10) != postgres_pid
        conn = await asyncpg.connect(state["database_url"])
        try:
            assert await conn.fetchval("select count(*) from schema_migrations") >= 1
        finally:
            await conn.close()

        lines.wait_for("[normalize] ", 120, "[^Worker]: Ready", since=before_kill)  # its readiness line, again
        lines.wait_for(f"[dev] normalize is back (pid {restarted}", 10, since=before_kill)

        # The stack is still up: ingest takes a delivery, recall answers.
        sent = subprocess.run(
            [sys.executable, "-m", "msgmem.cli", "send", str(fixture), "--provider", "meta"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )
        assert sent.returncode == 0 and sent.stdout.startswith("200 "), sent.stdout + sent.stderr
        assert httpx.get(state["recall_url"] + "/healthz", timeout=10).status_code == 200
        assert all(Path(f"/proc/{pid}").exists() for pid in json.loads(state_file.read_text())["processes"].values())
        state = json.loads(state_file.read_text())  # the pids to check are gone after Ctrl-C

        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, lines.tail()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for pid in state["processes"].values():
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert _processes_mentioning(str(state_dir)) == []
    assert not state_file.exists()
