"""`msgmem dev` brings the whole local stack up, writes its state file, and leaves nothing
running after Ctrl-C."""

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

    def wait_for(self, marker: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if marker in line:
                return line
        raise AssertionError(f"no {marker!r} within {timeout}s; output:\n" + self.tail())

    def tail(self) -> str:
        return "\n".join(self.seen[-60:])


async def test_dev_comes_up_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
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
