"""`msgmem dev` keeps its generated secrets across runs; other commands find the running stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
from aiokafka.errors import KafkaConnectionError
from pydantic import SecretStr

from contracts.settings import Settings
from msgmem.dev import dev_credentials
from msgmem.devstate import SECRETS_FILE, STATE_FILE, with_dev_stack, write_private
from msgmem.reach import unreachable


def _settings(state_dir: Path, **fields: object) -> Settings:
    return Settings(_env_file=None, state_dir=state_dir, **fields)  # type: ignore[call-arg, arg-type]


def test_generated_secrets_are_kept_private_and_reused(tmp_path: Path) -> None:
    first = dev_credentials(_settings(tmp_path))
    again = dev_credentials(_settings(tmp_path))
    assert first == again and all(len(v) >= 32 for v in first.values())
    kept = tmp_path / SECRETS_FILE
    assert kept.stat().st_mode & 0o777 == 0o600
    assert json.loads(kept.read_text()) == first


def test_a_configured_secret_wins_and_is_not_written(tmp_path: Path) -> None:
    generated = dev_credentials(_settings(tmp_path))
    chosen = dev_credentials(_settings(tmp_path, whapi_token=SecretStr("configured-token-of-the-operator")))
    assert chosen["whapi_token"] == "configured-token-of-the-operator"
    assert chosen["meta_app_secret"] == generated["meta_app_secret"]
    assert "configured-token-of-the-operator" not in (tmp_path / SECRETS_FILE).read_text()


def test_a_secrets_file_readable_by_others_is_rewritten_0600(tmp_path: Path) -> None:
    dev_credentials(_settings(tmp_path))
    (tmp_path / SECRETS_FILE).chmod(0o644)
    dev_credentials(_settings(tmp_path))
    assert (tmp_path / SECRETS_FILE).stat().st_mode & 0o777 == 0o600


def _state(tmp_path: Path, pid: int) -> None:
    write_private(tmp_path / STATE_FILE, {
        "pid": pid, "kafka_bootstrap_servers": "127.0.0.1:39092", "database_url": "postgresql://postgres@127.0.0.1:35432/postgres",
    })  # fmt: skip


def test_a_running_stack_fills_what_the_environment_left_unset(tmp_path: Path) -> None:
    _state(tmp_path, os.getpid())
    found = with_dev_stack(_settings(tmp_path))
    assert (found.kafka_bootstrap_servers, found.database_url) == (
        "127.0.0.1:39092", "postgresql://postgres@127.0.0.1:35432/postgres")  # fmt: skip
    own = with_dev_stack(_settings(tmp_path, database_url="postgresql://me@db:5432/x"))
    assert own.database_url == "postgresql://me@db:5432/x" and own.kafka_bootstrap_servers == "127.0.0.1:39092"


def test_a_stack_that_is_gone_is_ignored(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    _state(tmp_path, int(dead.stdout))
    assert with_dev_stack(_settings(tmp_path)).kafka_bootstrap_servers == "127.0.0.1:9092"


def test_unreachable_names_the_address_and_never_the_password(tmp_path: Path) -> None:
    settings = _settings(tmp_path, database_url="postgresql://u:hunter2@db.example:6543/x")
    assert "the Kafka broker at 127.0.0.1:9092" in str(unreachable(KafkaConnectionError("Unable to bootstrap"), settings))
    line = unreachable(asyncpg.InvalidPasswordError("password authentication failed for user u"), settings)
    assert line is not None and "db.example:6543" in line and "hunter2" not in line
    assert unreachable(ValueError("x"), settings) is None
