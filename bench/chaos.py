"""Fault suite at scale: no acknowledged message lost, and recovery per fault.

    .venv/bin/python bench/chaos.py [--messages 20000] [--rate 150] [--cluster]

A provider posts N distinct Whapi deliveries (about 2% of them twice) at a steady rate to a
real ingest, retrying anything not answered 200, while every service of the pipeline runs
as its own process (ingest, normalize, projector, media, transcribe, caption, extract,
media projector, embed with a local fake of OpenAI's API, embeddings projector). Faults, in
order: SIGKILL of each stage and projector (restarted 1 s later, as `msgmem dev` would), a
broker SIGKILL for 15 s while normalize works through a backlog, a Postgres SIGKILL for 5 s,
and rebalances (a second normalize and projector worker joins, then the first is killed).
With ``--cluster``, the stack is a 3-broker KRaft cluster (replication 3,
min.insync.replicas 2) and the broker fault is the SIGKILL of the partition leader of
wa.raw and then of wa.messages instead.

Then it reconciles: the ids answered 200 against the rows (0 lost, 0 duplicated, checksum of
id and text equal, every message embedded, no dead letter), and prints the recovery time of
each fault: from the kill (or from the broker or Postgres being back) until the consumers
affected move again. Targets: a killed stage or projector moves again within 15 s, the
pipeline within 30 s of the broker's return and within 10 s of Postgres's.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from msgmem.localstack.stack import start_stack  # noqa: E402
from scratch import scratch_dir  # noqa: E402  (bench/scratch.py)
from tests.chaos.harness import (  # noqa: E402
    BrokerOutage, Fault, KillService, LeaderKill, PostgresOutage, Rebalance, Report, run_chaos,
)
from tests.chaos.workload import Workload  # noqa: E402
from tests.fakes.openai_api import FakeOpenAI  # noqa: E402
from tests.fakes.server import ThreadedServer  # noqa: E402

SERVICES = (
    "ingest", "normalize", "projector", "media", "transcribe", "caption", "extract", "media_projector", "embed",
    "embeddings_projector",
)
IDLE = {"transcribe", "caption", "extract", "media_projector"}  # a text workload gives them nothing to consume


def faults(cluster: bool) -> list[Fault]:
    kills: list[Fault] = [
        KillService(name, at=0.02 + 0.04 * i, idle=name in IDLE) for i, name in enumerate(SERVICES[1:])
    ]
    broker: list[Fault] = (
        [LeaderKill("wa.raw", at=0.4), LeaderKill("wa.messages", at=0.5)] if cluster
        else [BrokerOutage(at=0.42, backlog_s=5, outage_s=15)]
    )
    return [
        *kills, *broker, PostgresOutage(at=0.58, outage_s=5),
        Rebalance("normalize", at=0.68), Rebalance("projector", at=0.8),
    ]


def main() -> int:
    # The probes' own Kafka clients: their errors while a broker is down are the point of the run.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument(
        "--rate", type=float, default=80.0,
        help="deliveries posted per second; posting must outlast the faults (about 200 s of them)",
    )
    parser.add_argument("--cluster", action="store_true", help="a 3-broker cluster; leaders are killed")
    args = parser.parse_args()

    with scratch_dir("chaos-") as root:  # kept, and named, when the run fails
        report = run(root, args)
        print("\n".join(report.lines()))
        ok = (
            not report.lost and report.duplicated == 0 and report.checksum_ok and report.dead_letters == 0
            and report.embedded == report.accepted and all(o.recovery_s is not None for o in report.outcomes)
        )
        print("PASS" if ok else "FAIL")
        if not ok:
            raise SystemExit(1)
    return 0


def run(root: Path, args: argparse.Namespace) -> Report:
    t0 = time.monotonic()
    stack = start_stack(root / "stack", durable=True, brokers=3 if args.cluster else 1)  # its own event loop
    print(f"stack up in {time.monotonic() - t0:.1f}s ({'3 brokers' if args.cluster else 'one broker'}); logs in {root}")
    fake = FakeOpenAI()
    openai = ThreadedServer(fake.app)
    url = openai.start()
    env = {"OPENAI_API_KEY": fake.api_key, "OPENAI_BASE_URL": f"{url}/v1", "EMBEDDINGS_BATCH_WAIT_MS": "50"}
    try:
        workload = Workload(run=uuid.uuid4().hex[:8], messages=args.messages)
        return asyncio.run(run_chaos(
            stack, workload, rate=args.rate, faults=faults(args.cluster), log_dir=root / "logs",
            services=SERVICES, extra_env=env, embeddings=True, drain_timeout=600,
        ))
    finally:
        openai.stop()
        stack.stop()

if __name__ == "__main__":
    sys.exit(main())
