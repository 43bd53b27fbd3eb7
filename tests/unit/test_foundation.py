"""Settings, topic declarations, the local broker's configuration and the Docker files."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from aiokafka.conn import collect_hosts
from faust.transport.drivers.aiokafka import server_list
from pydantic import ValidationError

from contracts.settings import Settings
from contracts.topics import ALL_TOPICS, RAW, by_name
from runtime.kafka import connection_config
from msgmem.localstack.kafka import server_properties
from msgmem.migrate import load_migrations
from msgmem.services import SERVICES
from streams.common.faust_app import make_app

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_listed_in_env_example() -> None:
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, re.M))
    assert listed == {name.upper() for name in Settings.model_fields}
    for name in listed:  # each variable has a one-line comment above it
        assert re.search(rf"^# .+\n{name}=", text, re.M), name


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:9092")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example:6543/postgres")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.kafka_bootstrap_servers == "broker:9092"
    assert settings.database_is_transaction_pooler and settings.statement_cache_size == 0


def test_ai_prices_are_json_merged_over_the_list_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).ai_prices["gpt-4o-mini"].input_per_1m_tokens == 0.15  # type: ignore[call-arg]
    monkeypatch.setenv("AI_PRICES", "")
    assert Settings(_env_file=None).ai_prices["text-embedding-3-small"].input_per_1m_tokens == 0.02  # type: ignore[call-arg]
    monkeypatch.setenv("AI_PRICES", '{"gpt-4o-mini": {"input_per_1m_tokens": 0.1}, "my-model": {"per_call": 0.01}}')
    prices = Settings(_env_file=None).ai_prices  # type: ignore[call-arg]
    assert prices["gpt-4o-mini"].input_per_1m_tokens == 0.1 and prices["gpt-4o-mini"].output_per_1m_tokens == 0
    assert prices["my-model"].per_call == 0.01 and prices["whisper-1"].per_audio_minute == 0.006
    monkeypatch.setenv("AI_PRICES", '{"gpt-4o-mini": {"input_per_1m_tokens": -1}}')
    with pytest.raises(ValueError, match="ai_prices"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_production_refuses_placeholder_secrets() -> None:
    with pytest.raises(ValidationError, match="KAFKA_SASL_PASSWORD"):
        Settings(_env_file=None, environment="production", kafka_sasl_password="changeme")  # type: ignore[call-arg]
    Settings(
        _env_file=None, environment="production", kafka_sasl_password="s3cr3t-Value-" + "k7Qz" * 5,
        database_url="postgresql://msgmem:Xk29-vLq-0pRt@db.internal:5432/postgres",
    )  # type: ignore[call-arg]


def test_secrets_do_not_show_in_repr() -> None:
    settings = Settings(_env_file=None, kafka_sasl_password="hunter2-hunter2")  # type: ignore[call-arg]
    assert "hunter2" not in repr(settings)


def test_topics_are_declared_once_with_key_meaning_and_retention() -> None:
    names = [t.name for t in ALL_TOPICS]
    assert len(names) == len(set(names))
    assert {"wa.raw", "wa.messages", "wa.media", "wa.deadletter", "wa.embeddings"} <= set(names)
    assert all(t.key and t.partitions >= 1 for t in ALL_TOPICS)
    assert by_name("wa.raw") is RAW
    assert RAW.config()["max.message.bytes"] == str(20 * 1024 * 1024)
    assert RAW.config()["retention.ms"] == "-1"


def test_local_broker_is_configured_for_a_dev_box(tmp_path: Path) -> None:
    props = dict(
        line.split("=", 1) for line in server_properties(tmp_path, 9092, 9093).splitlines() if line
    )
    assert props["process.roles"] == "broker,controller"
    assert props["auto.create.topics.enable"] == "false"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["offsets.topic.replication.factor"] == "1"
    assert int(props["message.max.bytes"]) > int(RAW.config()["max.message.bytes"])


def test_a_cluster_node_shares_the_voters_and_replicates_three_ways(tmp_path: Path) -> None:
    voters = "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
    text = server_properties(tmp_path, 9094, 9095, node_id=2, voters=voters, replication=3, min_insync=2)
    props = dict(line.split("=", 1) for line in text.splitlines() if line)
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == voters
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095"
    for key in ("default.replication.factor", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor"):
        assert props[key] == "3", key
    assert props["min.insync.replicas"] == props["transaction.state.log.min.isr"] == "2"
    assert props["unclean.leader.election.enable"] == "false"

    alone = dict(line.split("=", 1) for line in server_properties(tmp_path, 9092, 9093).splitlines() if line)
    assert alone["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert alone["default.replication.factor"] == alone["min.insync.replicas"] == "1"


def test_every_bootstrap_server_reaches_the_clients(tmp_path: Path) -> None:
    """A comma-separated list (spaces allowed) gives aiokafka and Faust every broker."""
    servers = ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"]
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, kafka_bootstrap_servers="127.0.0.1:9001, 127.0.0.1:9002,127.0.0.1:9003", state_dir=tmp_path
    )
    hosts = collect_hosts(connection_config(settings)["bootstrap_servers"], randomize=False)
    assert [f"{host}:{port}" for host, port, _ in hosts] == servers
    app = make_app("unit", settings)
    assert server_list(app.conf.broker, 9092) == servers


def test_local_broker_threads_follow_the_cores(tmp_path: Path) -> None:
    def threads(cpus: int) -> tuple[str, str]:
        props = dict(line.split("=", 1) for line in server_properties(tmp_path, 1, 2, cpus).splitlines() if line)
        return props["num.network.threads"], props["num.io.threads"]

    assert threads(2) == ("1", "2")  # no more request threads than a small machine has cores
    assert threads(4) == ("2", "4")
    assert threads(64) == ("3", "8")  # Kafka's own defaults on a server


def test_migrations_are_ordered_sql_files() -> None:
    versions = [m.version for m in load_migrations()]
    assert versions == sorted(versions) and versions[0] == "0001_initial"
    assert versions == [m.version for m in load_migrations(ROOT / "migrations")]


def test_compose_file_runs_every_process_that_dev_runs() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redpanda", "console", "postgres", "migrate"} <= set(services)
    assert services["console"]["environment"]["KAFKA_BROKERS"] == "redpanda:9092"
    assert "--mode=dev-container" in services["redpanda"]["command"]
    for service in SERVICES:
        assert service.name in services, f"docker-compose.yml lacks {service.name}"
        spec = services[service.name]
        assert spec["build"] == "." and spec["command"] == ["python", "-m", service.module]
    assert services["migrate"]["build"] == "."
    assert (ROOT / "Dockerfile").exists()


def _requirement_names(lines: list[str]) -> set[str]:
    names = set()
    for line in lines:
        match = re.match(r"^\s*\"?([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if match:
            names.add(re.sub(r"[-_.]+", "-", match.group(1)).lower())
    return names


def test_lock_files_pin_every_dependency_with_hashes() -> None:
    """`make` installs from the lock files with --require-hashes: a dependency added to
    pyproject.toml without `make lock` would fail every fresh install."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _requirement_names(project["dependencies"])
    dev = runtime | _requirement_names(project["optional-dependencies"]["local"] + project["optional-dependencies"]["test"])
    for lock, wanted in (("requirements.lock", runtime), ("requirements-dev.lock", dev)):
        text = (ROOT / lock).read_text()
        pinned = {re.sub(r"[-_.]+", "-", m).lower() for m in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", text, re.M)}
        assert wanted <= pinned, (lock, sorted(wanted - pinned))
        blocks = re.split(r"^(?=[A-Za-z0-9])", text, flags=re.M)
        assert all("--hash=sha256:" in b for b in blocks if "==" in b.split("\n")[0])


def test_the_database_url_password_is_not_in_the_settings_repr() -> None:
    from contracts.settings import Settings

    settings = Settings(_env_file=None, database_url="postgresql://app:hunter2-secret@db:5432/x")  # type: ignore[call-arg]
    assert "hunter2-secret" not in repr(settings) and "hunter2-secret" not in str(settings)
    assert settings.database_url.endswith("@db:5432/x")
