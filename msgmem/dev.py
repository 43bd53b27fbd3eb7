"""`msgmem dev`: the whole system on one machine, no Docker.

Starts Kafka (KRaft) and PostgreSQL as child processes, applies migrations, creates the
topics, then runs every service of ``msgmem.services`` with prefixed logs. Writes a JSON
state file (ingest URL, DATABASE_URL, Kafka bootstrap servers, pids) and prints its path.
A child that dies, a service or Kafka or Postgres, is started again with exponential
backoff (``msgmem.supervisor``), saying so in one line; the state file then shows its new
pid. On Ctrl-C or SIGTERM it stops everything it started: services first, then Postgres
and Kafka.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from contracts.settings import Settings
from msgmem.devstate import STATE_FILE, dev_secrets, write_private
from runtime.kafka import describe_retention, ensure_topics
from msgmem.localstack.kafka import LocalKafka, kafka_libs
from msgmem.localstack.postgres import LocalPostgres
from msgmem.localstack.processes import Child, ChildFailed, env_with, free_port, stdout_sink, stop_all
from msgmem.migrate import migrate
from runtime.private import PRIVATE_DIR_MODE, private_dir, private_umask
from msgmem.services import SERVICES, Service
from msgmem.supervisor import Supervisor


def _port(configured: int) -> int:
    return configured or free_port()


# media_signing_key: the recall service signs media URLs of the local store with it;
# console_api_key / console_session_key: the web console's login and its session cookie.
_DEV_SECRETS = (
    "whapi_token", "meta_app_secret", "meta_verify_token", "evolution_api_key", "ingest_api_key", "recall_api_key",
    "admin_api_key",
    "media_signing_key", "console_api_key", "console_session_key",
)


def dev_credentials(settings: Settings) -> dict[str, str]:
    """Provider secrets for the local run: the configured ones, random ones where unset.

    Random ones are made once and kept in STATE_DIR (``msgmem.devstate``), so a restart
    keeps them. They go to the children's environment and to the state file (mode 0600),
    where `msgmem send` finds them, so a newcomer can post fixtures without any setup.
    """
    return dev_secrets(settings, _DEV_SECRETS)


def dev_media_env(settings: Settings) -> dict[str, str]:
    """Environment that keeps the media worker from using a generated secret as a credential.

    A WHAPI_TOKEN made up by ``dev_credentials`` only authenticates the fixtures' webhooks; it
    is no Whapi API token, and the media stage would otherwise fall back to it and send it to
    Whapi. Without a configured Whapi token, WHAPI_API_URL is cleared, so Whapi media are
    recorded as skipped ("WHAPI_API_URL is not set") instead.
    """
    token = settings.whapi_media_token
    return {} if token is not None and token.get_secret_value() else {"WHAPI_API_URL": ""}


def _log(message: str) -> None:
    stdout_sink(f"[dev] {message}")


class _Interrupted(Exception):
    """Ctrl-C or SIGTERM while the stack is still starting."""


def run_dev(settings: Settings) -> int:
    """Run until interrupted; return the exit code."""
    # Owner-only from here on: the state file, Kafka's and Postgres's data, media, the
    # children's files (they inherit the umask).
    private_umask()
    state_dir = private_dir(settings.state_dir)
    state_dir.chmod(PRIVATE_DIR_MODE)  # one made by an earlier version too
    state_file = state_dir / STATE_FILE
    stop = threading.Event()
    reason: list[str] = []
    phase = ["starting"]  # then "running", then "stopping"

    def on_signal(signum: int, _frame: object) -> None:
        reason.append(signal.Signals(signum).name)
        stop.set()
        if phase[0] == "starting":
            phase[0] = "stopping"  # raise once: a second Ctrl-C must not interrupt the clean-up
            raise _Interrupted(reason[0])

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    started: list[Child] = []
    supervisor: Supervisor | None = None
    t0 = time.monotonic()
    try:
        libs = kafka_libs(settings.cache_dir, settings.local_kafka_version)
        kafka = LocalKafka(libs, state_dir / "kafka", _port(settings.local_kafka_port), free_port()).start()
        started.append(kafka.child)  # type: ignore[arg-type]
        postgres = LocalPostgres(state_dir / "postgres", _port(settings.local_postgres_port)).start()
        started.append(postgres.child)  # type: ignore[arg-type]
        postgres.wait_ready()
        kafka.wait_ready()
        _log(f"kafka and postgres ready in {time.monotonic() - t0:.1f}s")

        stack = settings.model_copy(
            update={"kafka_bootstrap_servers": kafka.bootstrap_servers, "database_url": postgres.database_url}
        )
        applied = asyncio.run(migrate(stack.database_url))
        _log(f"migrations applied: {', '.join(applied) or 'none new'}")
        report = asyncio.run(ensure_topics(stack))
        _log(f"topics created: {', '.join(report.created) or 'none new'}")
        for name, old, new in report.retention_changed:
            _log(f"retention of {name}: {describe_retention(old)} -> {describe_retention(new)}")
        for warning in report.warnings:
            _log(f"warning: {warning}")

        ingest_port = _port(settings.ingest_port)
        recall_port = _port(settings.recall_port)
        credentials = dev_credentials(settings)
        env = env_with(
            {name.upper(): value for name, value in credentials.items()}
            | dev_media_env(settings)
            | {
                "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap_servers,
                "DATABASE_URL": stack.database_url,
                "INGEST_PORT": str(ingest_port),
                "RECALL_PORT": str(recall_port),
                "STATE_DIR": str(state_dir),
                "PYTHONUNBUFFERED": "1",
            }
        )

        def service_starter(service: Service) -> Callable[[], Child]:
            # One worker per consumer group here, so each can be a static member: restarted
            # after a crash, it takes its partitions back at once (no session timeout to wait).
            own = env | ({"KAFKA_GROUP_INSTANCE_ID": f"dev-{service.name}"} if service.group else {})
            return lambda: Child(service.name, service.argv(), ready_pattern=service.ready_pattern, env=own).start()

        starters = {s.name: service_starter(s) for s in SERVICES}
        services = [start() for start in starters.values()]
        started.extend(services)
        for child in services:
            child.wait_ready(60)

        state = {
            "pid": os.getpid(),
            "started_at": datetime.now(UTC).isoformat(),
            "ingest_url": f"http://127.0.0.1:{ingest_port}",
            "recall_url": f"http://127.0.0.1:{recall_port}",
            "database_url": stack.database_url,
            "kafka_bootstrap_servers": stack.kafka_bootstrap_servers,
            "processes": {c.name: c.pid for c in started},
            "credentials": credentials,
        }

        def write_state(pids: Mapping[str, int | None]) -> None:
            state["processes"] = dict(pids)
            write_private(state_file, state)

        # Kafka and Postgres are restarted on the same data directories and ports: the
        # services reconnect by themselves. A crashed service is started again as it was.
        supervisor = Supervisor(say=_log, on_change=write_state)
        supervisor.adopt(kafka.child, lambda: kafka.start().child)  # type: ignore[arg-type, return-value]
        supervisor.adopt(postgres.child, lambda: postgres.start().child)  # type: ignore[arg-type, return-value]
        for child in services:
            supervisor.adopt(child, starters[child.name])
        write_state(supervisor.pids())
        _log(f"up in {time.monotonic() - t0:.1f}s; state file: {state_file}")
        _log("press Ctrl-C to stop")
        phase[0] = "running"

        while not stop.wait(0.5):
            supervisor.tick()
        phase[0] = "stopping"
        _log(f"stopping ({reason[0]})")
        return 0
    except _Interrupted as exc:
        _log(f"stopping ({exc}) before the stack was up")
        return 0
    except ChildFailed as exc:
        _log(str(exc))
        return 1
    finally:
        phase[0] = "stopping"
        # Services first (reverse start order), then Postgres, then Kafka.
        stop_all(supervisor.processes() if supervisor is not None else started)
        state_file.unlink(missing_ok=True)
        _log("stopped")
