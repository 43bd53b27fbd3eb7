"""Ingest benchmark: deliveries/s and latency against the local broker, beside a bare endpoint.

    .venv/bin/python bench/ingest.py [--requests 20000] [--concurrency 64] [--rounds 5] [--rate 500 --seconds 20]

Starts a local Kafka broker (cached jars), runs ingest (`python -m ingest`) and a bare
FastAPI endpoint that parses the body and writes nothing, each as its own uvicorn process,
and drives both from this process with aiohttp. Prints, in one run:
  1. closed loop at a fixed concurrency: deliveries/s, p50, p99, for ingest and bare, and the
     ratio (median over rounds that alternate the two);
  2. open loop at a fixed rate (default 500/s): p50, p99 and errors for ingest.
Targets on a 2-core machine: ingest >= 60% of bare throughput; p99 <= 25 ms at 500/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scratch import scratch_dir  # bench/scratch.py

from contracts.settings import Settings
from runtime.gc_tuning import settle_gc
from runtime.kafka import ensure_topics
from msgmem.localstack.kafka import LocalKafka, kafka_libs
from msgmem.localstack.processes import Child, env_with, file_sink, free_port

TOKEN = "bench-whapi-token"
BODY = (ROOT / "tests" / "fixtures" / "webhooks" / "whapi" / "text.json").read_bytes()
HEADERS = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}


def bare_app() -> FastAPI:
    """The floor: same framework and server, parses the JSON, writes nothing. Its garbage
    collector is set up like ingest's, so the comparison is like for like."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        settle_gc()
        yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/webhooks/whapi")
    async def receive(request: Request) -> JSONResponse:
        orjson.loads(await request.body())
        return JSONResponse({"status": "accepted"})

    return app


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] if len(values) > 1 else values[0]


async def closed_loop(url: str, requests: int, concurrency: int) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            for _ in counter:
                t0 = time.perf_counter()
                async with session.post(url, data=BODY, headers=HEADERS) as r:
                    await r.read()
                    errors += r.status != 200
                latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return requests / elapsed, latencies, errors


async def open_loop(url: str, rate: float, seconds: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            nonlocal errors
            t0 = time.perf_counter()
            async with session.post(url, data=BODY, headers=HEADERS) as r:
                await r.read()
                errors += r.status != 200
            latencies.append(time.perf_counter() - t0)

        tasks = []
        start = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return latencies, errors


def start_server(name: str, argv: list[str], env: dict[str, str], log: Path) -> Child:
    child = Child(name, argv, ready_pattern="Uvicorn running on", env=env, sink=file_sink(log))
    child.start().wait_ready(60)
    return child


def report(label: str, rate: float, latencies: list[float], errors: int) -> None:
    print(
        f"{label:<28} {rate:>9.0f}/s  p50 {percentile(latencies, 0.5) * 1000:6.1f} ms"
        f"  p99 {percentile(latencies, 0.99) * 1000:6.1f} ms  errors {errors}"
    )


async def run(args: argparse.Namespace, ingest_url: str, bare_url: str) -> None:
    # Warm-up: connections, the producer's first batches, the broker's JIT.
    await closed_loop(ingest_url, args.warmup, args.concurrency)
    await closed_loop(bare_url, args.warmup, args.concurrency)
    # Rounds alternate bare and ingest, and the ratio is taken per pair: on a shared machine
    # the speed of both drifts by tens of percent within a minute, and back-to-back rounds
    # see the same drift.
    labels = ("bare endpoint", "ingest -> wa.raw (acks=all)")
    rates: dict[str, list[float]] = {label: [] for label in labels}
    latencies: dict[str, list[float]] = {label: [] for label in labels}
    errors = dict.fromkeys(labels, 0)
    ratios = []
    for _ in range(args.rounds):
        for label, url in zip(labels, (bare_url, ingest_url), strict=True):
            rate, lat, err = await closed_loop(url, args.requests, args.concurrency)
            rates[label].append(rate)
            latencies[label].extend(lat)
            errors[label] += err
        ratios.append(rates[labels[1]][-1] / rates[labels[0]][-1])
    for label in labels:
        report(f"{label} c={args.concurrency}", statistics.median(rates[label]), latencies[label], errors[label])
    print(f"ingest / bare per round: {' '.join(f'{r:.0%}' for r in ratios)}")
    print(f"ingest / bare throughput (median of {args.rounds} paired rounds): {statistics.median(ratios):.0%}  (target >= 60%)")
    lat, err = await open_loop(ingest_url, args.rate, args.seconds)
    report(f"ingest open loop {args.rate:.0f}/s", len(lat) / args.seconds, lat, err)
    print(f"p99 at {args.rate:.0f}/s: {percentile(lat, 0.99) * 1000:.1f} ms  (target <= 25 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--linger-ms", type=int, default=None, help="override KAFKA_PRODUCER_LINGER_MS for ingest")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=10_000, help="requests to each endpoint before measuring")
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        import uvicorn

        uvicorn.run(bare_app(), host="127.0.0.1", port=args.serve_bare, log_level="info", access_log=False)
        return

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    with scratch_dir("msgmem-bench-ingest-") as work:
        measure(args, settings, work)


def measure(args: argparse.Namespace, settings: Settings, work: Path) -> None:
    kafka = LocalKafka(
        kafka_libs(settings.cache_dir, settings.local_kafka_version), work / "kafka", free_port(), free_port(),
        sink=file_sink(work / "kafka.log"),
    )
    children: list[Child] = []
    try:
        kafka.start().wait_ready()
        cfg = settings.model_copy(update={"kafka_bootstrap_servers": kafka.bootstrap_servers})
        asyncio.run(ensure_topics(cfg))
        ingest_port, bare_port = free_port(), free_port()
        env = env_with({
            "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers, "INGEST_PORT": str(ingest_port),
            "WHAPI_TOKEN": TOKEN, "PYTHONPATH": str(ROOT),
        } | ({"KAFKA_PRODUCER_LINGER_MS": str(args.linger_ms)} if args.linger_ms is not None else {}))
        env["LOG_LEVEL"] = "INFO"  # uvicorn announces start-up at INFO
        print(f"ingest producer linger: {env.get('KAFKA_PRODUCER_LINGER_MS', settings.kafka_producer_linger_ms)} ms")
        children.append(start_server("ingest", [sys.executable, "-m", "ingest"], env, work / "ingest.log"))
        children.append(start_server(
            "bare", [sys.executable, __file__, "--serve-bare", str(bare_port)], env, work / "bare.log"
        ))
        print(f"machine: {os.cpu_count()} cores; body {len(BODY)} bytes")
        asyncio.run(run(args, f"http://127.0.0.1:{ingest_port}/webhooks/whapi",
                        f"http://127.0.0.1:{bare_port}/webhooks/whapi"))
    finally:
        for child in reversed(children):
            child.stop()
        kafka.stop()


if __name__ == "__main__":
    main()
