"""Normalize's own CPU per event, without Kafka or Faust: ``outputs_for`` (decode the wa.raw
record, parse the Whapi delivery, build and encode the MessageReceived, consent check) over N
text deliveries like bench/pipeline.py's, in one process.

    .venv/bin/python bench/normalize.py [--events 20000] [--runs 5] [--profile]

Prints µs per event for each run and their median. The stage's whole per-event cost (Faust's
stream, the runner, the producer) is bench/pipeline.py's; this isolates the parsing half, the
part issue 20 wants at most 40 µs per text message together with the rest.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pipeline import delivery_body  # noqa: E402
from contracts.raw import RawDelivery  # noqa: E402
from contracts.settings import Settings  # noqa: E402
from streams.common.records import InputRecord  # noqa: E402
from streams.normalize.agent import NormalizeMetrics, config_from, outputs_for  # noqa: E402


def records(n: int) -> list[InputRecord]:
    out = []
    for i in range(n):
        d = RawDelivery(delivery_id=f"b-{i}", provider="whapi", channel="BENCH-CH", received_at=datetime.now(UTC),
                        body=delivery_body(i, "bench"))  # fmt: skip
        out.append(InputRecord("wa.raw", 0, i, b"whapi:BENCH-CH", d.body, tuple(d.kafka_headers())))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print the 25 costliest functions of one more run")
    args = parser.parse_args()
    config, metrics, limit = config_from(Settings(_env_file=None)), NormalizeMetrics(), 4 << 20  # type: ignore[call-arg]
    batch = records(args.events)
    for record in batch[:1000]:  # warm caches
        outputs_for(record, config, limit, metrics)
    per_event = []
    for _ in range(args.runs):
        start = time.perf_counter()
        for record in batch:
            outputs_for(record, config, limit, metrics)
        per_event.append((time.perf_counter() - start) / len(batch) * 1e6)
    print(f"normalize outputs_for, {args.events:,} Whapi text deliveries: "
          f"{', '.join(f'{x:.1f}' for x in per_event)} µs/event; median {statistics.median(per_event):.1f} µs")  # fmt: skip
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        for record in batch:
            outputs_for(record, config, limit, metrics)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
