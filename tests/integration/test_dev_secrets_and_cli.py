"""`msgmem dev` restarted keeps the secrets it generated (0600 in its state dir), so what
was configured with them keeps working; `msgmem` commands with no stack address of their
own find the running stack through its state file and print no library lines; start-up
shows no Python warnings and a normal stop no traceback."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from msgmem.send import Credentials, signed_headers
from tests.conftest import FIXTURES
from tests.integration.test_dev_command import _Lines

pytestmark = pytest.mark.integration

_UNSET = {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "XDG_RUNTIME_DIR", "WHAPI_TOKEN", "META_APP_SECRET",
          "META_VERIFY_TOKEN", "EVOLUTION_API_KEY", "INGEST_API_KEY", "RECALL_API_KEY"}  # fmt: skip
_WARNING = re.compile(r"\b\w+Warning: ")  # a Python warning as printed (RuntimeDirWarning: ...)


def _env(state_dir: Path) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _UNSET} | {
        "STATE_DIR": str(state_dir), "LOCAL_KAFKA_PORT": "0", "LOCAL_POSTGRES_PORT": "0", "INGEST_PORT": "0",
        "RECALL_PORT": "0", "PYTHONUNBUFFERED": "1",
    }  # fmt: skip


def _msgmem(env: dict[str, str], cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "msgmem.cli", *argv], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


class _Dev:
    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "msgmem.cli", "dev"], env=env, cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        self.lines = _Lines(self.proc)
        line = self.lines.wait_for("state file:", 180)
        self.state_file = Path(line.split("state file:", 1)[1].strip())
        self.state: dict[str, Any] = json.loads(self.state_file.read_text())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                assert self.proc.wait(60) == 0, self.lines.tail()
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait()
        self.lines.wait_for("[dev] stopped", 10)
        assert not [x for x in self.lines.seen if "Traceback" in x or _WARNING.search(x)], self.lines.tail()


@pytest.mark.timeout(600)
def test_dev_keeps_its_secrets_and_every_command_finds_it(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    env = _env(state_dir)
    dev = _Dev(env, tmp_path)
    try:
        first = dev.state["credentials"]
        kept = state_dir / "dev-secrets.json"
        assert json.loads(kept.read_text()) == first
        assert kept.stat().st_mode & 0o777 == 0o600 and dev.state_file.stat().st_mode & 0o777 == 0o600
        for argv in (["status"], ["dlq", "list"], ["replay", "normalize", "--dry-run"], ["topics"], ["migrate"]):
            done = _msgmem(env, tmp_path, *argv)
            assert done.returncode == 0 and done.stderr == "", (argv, done.stdout, done.stderr)
        assert "wa.raw" in _msgmem(env, tmp_path, "status").stdout
    finally:
        dev.stop()

    dev = _Dev(env, tmp_path)
    try:
        assert dev.state["credentials"] == first
        # A sender configured with the first run's secret (a provider's webhook) is still let in.
        body = (FIXTURES / "webhooks" / "whapi" / "text.json").read_bytes()
        creds = Credentials(first["whapi_token"], first["meta_app_secret"], first["evolution_api_key"],
                            first["ingest_api_key"])  # fmt: skip
        answer = httpx.post(f"{dev.state['ingest_url']}/webhooks/whapi", content=body,
                            headers=signed_headers("whapi", body, creds), timeout=30)  # fmt: skip
        assert answer.status_code == 200, answer.text
    finally:
        dev.stop()

    gone = _msgmem(env, tmp_path, "status")
    assert gone.returncode == 3 and gone.stderr.count("\n") == 1 and "cannot reach" in gone.stderr, gone.stderr
