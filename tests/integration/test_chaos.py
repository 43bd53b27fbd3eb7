"""The fault suite, small: a provider posts 2,400 distinct deliveries (about 2% of them
delivered twice) at a steady rate through real ingest, normalize and projector processes,
retrying whatever was not answered 200, while normalize is SIGKILLed, the broker is
SIGKILLed for 15 s while normalize works through a backlog, and Postgres is SIGKILLed for
5 s. This stack's Postgres runs without fsync or synchronous commit, so the kill also loses
commits it had acknowledged, as a failover to a lagging replica would: the projector must
find that out and apply those records again. Every message answered 200 must end as
exactly one row with its text: 0 lost, 0 duplicated, checksums equal, no dead letter.
``bench/chaos.py`` runs the same at N = 20,000 with every fault.

The stack is this module's own: killing its broker disturbs no other test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from msgmem.localstack.stack import Stack, start_stack
from tests.chaos.harness import BrokerOutage, KillService, PostgresOutage, run_chaos
from tests.chaos.workload import Workload

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

# A kill used to stall the partitions for Faust's 60 s session timeout; the target is 15 s
# (``bench/chaos.py`` reports it). The bound here only catches the regression, with room for
# a loaded CI machine.
KILL_BOUND_S = 45.0
OUTAGE_BOUND_S = 60.0


@pytest.fixture(scope="module")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("chaos"))
    try:
        yield running
    finally:
        running.stop()


async def test_no_accepted_message_is_lost_when_normalize_and_the_broker_die(
    chaos_stack: Stack, tmp_path: Path
) -> None:
    workload = Workload(run=uuid.uuid4().hex[:8], messages=2_400)
    faults = [
        KillService("normalize", at=0.1), BrokerOutage(at=0.3, backlog_s=4, outage_s=15),
        PostgresOutage(at=0.75, outage_s=5),
    ]
    report = await run_chaos(chaos_stack, workload, rate=50, faults=faults, log_dir=tmp_path)
    print("\n" + "\n".join(report.lines()))

    assert report.accepted == workload.messages
    assert report.lost == [], f"{len(report.lost)} accepted messages have no row, e.g. {report.lost[:5]}"
    assert report.duplicated == 0
    assert report.rows == report.accepted and report.checksum_ok
    assert report.dead_letters == 0
    assert report.answers.get(503, 0) + report.answers.get(0, 0) > 0, "the outage must have refused deliveries"
    kill, broker, postgres = report.outcomes
    assert kill.recovery_s is not None and kill.recovery_s < KILL_BOUND_S, kill
    assert broker.recovery_s is not None and broker.recovery_s < OUTAGE_BOUND_S, broker
    assert postgres.recovery_s is not None and postgres.recovery_s < OUTAGE_BOUND_S, postgres
