"""During a broker outage every service logs a bounded number of lines: the change of
state, a periodic summary, then the recovery; never thousands of connection errors.

ingest (taking webhooks throughout), normalize (a Faust worker) and the projector (a plain
aiokafka consumer) run as real processes against a broker of this test's own, which is
stopped for 15 s. Whether ingest takes deliveries again afterwards is for
test_ingest_broker_outage to say. Measured before the rate limit (runtime.logging_setup),
in such an outage: ingest 633 lines, the projector 1,111 to 1,360, normalize 1,200 to
39,555 (aiokafka's metadata retries); with it, 1 to 4 lines each."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import orjson
import pytest

from contracts.settings import Settings
from runtime.kafka import ensure_topics
from msgmem.localstack.kafka import LocalKafka, kafka_libs
from msgmem.localstack.processes import file_sink, free_port
from msgmem.send import signed_headers
from tests.integration.test_ingest import CREDS, SECRETS, WEBHOOKS
from tests.services import running

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 15.0
#: Lines a process may write during a 15 s outage: the state change, a summary, the few
#: records each other template may write before it is limited.
MAX_LINES = 40
SERVICES = ("ingest", "normalize", "projector")


@pytest.fixture
def own_broker(tmp_path: Path, settings: Settings) -> Iterator[LocalKafka]:
    """A broker of this test's own, so stopping it leaves the session's broker alone."""
    libs = kafka_libs(settings.cache_dir, settings.local_kafka_version)
    kafka = LocalKafka(libs, tmp_path / "kafka", free_port(), free_port(), sink=file_sink(tmp_path / "kafka.log"))
    kafka.start().wait_ready()
    try:
        yield kafka
    finally:
        kafka.stop()


def _lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines() if path.exists() else []


async def _line(path: Path, start: int, marker: str, timeout: float) -> str:
    """The first line from index ``start`` on holding ``marker``, waiting up to ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in _lines(path)[start:]:
            if marker in line:
                return line
        await asyncio.sleep(0.2)
    tail = "\n".join(_lines(path)[start:][-40:])
    raise AssertionError(f"{path.name}: no {marker!r} within {timeout}s; since then:\n{tail}")


async def test_services_log_a_bounded_number_of_lines_during_a_broker_outage(
    own_broker: LocalKafka, settings: Settings, tmp_path: Path
) -> None:
    cfg = settings.model_copy(
        update={"kafka_bootstrap_servers": own_broker.bootstrap_servers, "state_dir": tmp_path / "state"}
    )
    await ensure_topics(cfg)
    logs = tmp_path / "logs"
    logs.mkdir()
    port = free_port()
    env = {"ingest": {"INGEST_PORT": str(port)} | {k.upper(): v for k, v in SECRETS.items()}}
    template = orjson.loads((WEBHOOKS / "whapi" / "text.json").read_bytes())
    statuses: list[int] = []

    async def webhooks(client: httpx.AsyncClient) -> None:
        """A delivery every 0.2 s, so ingest's producer keeps trying the broker."""
        for i in range(10**6):
            body = orjson.dumps(dict(template, seq=i))
            try:
                r = await client.post("/webhooks/whapi", content=body, headers=signed_headers("whapi", body, CREDS))
                statuses.append(r.status_code)
            except httpx.HTTPError:
                statuses.append(0)
            await asyncio.sleep(0.2)

    with ExitStack() as services:
        for name in SERVICES:
            services.enter_context(running(name, cfg, logs, **env.get(name, {})))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            traffic = asyncio.create_task(webhooks(client))
            try:
                while statuses.count(200) < 5:
                    assert not traffic.done() and len(statuses) < 200, statuses[-10:]
                    await asyncio.sleep(0.2)
                before = {name: len(_lines(logs / f"{name}.log")) for name in SERVICES}

                await asyncio.to_thread(own_broker.stop)
                await asyncio.sleep(OUTAGE_SECONDS)
                during = {name: _lines(logs / f"{name}.log")[before[name]:] for name in SERVICES}
                assert 503 in statuses, "ingest should have refused deliveries while the broker was down"

                await asyncio.to_thread(lambda: own_broker.start().wait_ready())
                report = ", ".join(f"{name} {len(lines)}" for name, lines in during.items())
                print(f"\nlog lines during a {OUTAGE_SECONDS:.0f}s broker outage: {report}")
                for name in SERVICES:
                    assert len(during[name]) <= MAX_LINES, (
                        f"{name} wrote {len(during[name])} lines in a {OUTAGE_SECONDS:.0f}s outage:\n"
                        + "\n".join(during[name][:80])
                    )
                    assert any("broker unreachable" in line for line in during[name]), (name, during[name][:20])
                for name in SERVICES:
                    await _line(logs / f"{name}.log", before[name], "broker reachable again after", 90)
            finally:
                traffic.cancel()
