"""Every `msgmem` command run with no broker, no Postgres and no ingest to reach says so in
one line on stderr and exits 3: no traceback, no library lines, no password."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from msgmem.localstack.processes import free_port
from tests.conftest import FIXTURES

pytestmark = pytest.mark.integration

COMMANDS = [
    ["status"], ["dlq", "list"], ["replay", "normalize", "--dry-run"], ["projections", "rebuild", "--no-progress"],
    ["media", "sweep"], ["migrate"], ["topics"],
    ["send", str(FIXTURES / "webhooks" / "whapi" / "text.json"), "--provider", "whapi"],
]  # fmt: skip


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: " ".join(argv[:2]))
def test_a_command_without_its_stack_says_one_line(argv: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"}} | {
        "STATE_DIR": str(tmp_path), "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "DATABASE_URL": f"postgresql://postgres:hunter2@127.0.0.1:{free_port()}/postgres",
        "INGEST_PORT": str(free_port()), "WHAPI_TOKEN": "x" * 32, "XDG_RUNTIME_DIR": "",
    }  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "msgmem.cli", *argv], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    lines = done.stderr.splitlines()
    assert done.returncode == 3, done.stdout + done.stderr
    assert len(lines) == 1 and lines[0].startswith("msgmem: cannot reach "), done.stderr
    assert "is `msgmem dev` running?" in lines[0] and "hunter2" not in lines[0]
    assert done.stdout == ""
