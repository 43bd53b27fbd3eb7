"""Embedding throughput of the embed stage's handler against the fake OpenAI server, as a share of
the bound that batching and the API's latency set.

    .venv/bin/python bench/embed.py [--messages 20000] [--latency 0.05] [--words 40]

Runs the stage's own pieces in one process, without Kafka: wa.messages records -> StageRunner
(EMBED_CONCURRENCY records in flight) -> EmbedHandler (tokenise, chunk) -> BatchingEmbedder
(EMBEDDINGS_BATCH_MAX_INPUTS texts per call, EMBEDDINGS_MAX_REQUESTS calls in flight) ->
the fake server on a real socket, answering each call after ``--latency`` seconds.

Bound: with every call full and every slot busy, chunks/s = max_requests x max_inputs /
latency. The fake computes its vectors in the same Python process (another thread), so at
high rates part of the gap is the fake's own CPU, not the stage's; the report shows the
calls' average size and the time the handler spent outside the API.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contracts.settings import Settings  # noqa: E402
from streams.common.outputs import RecordingOutputs  # noqa: E402
from streams.common.runner import StageRunner  # noqa: E402
from streams.embed.agent import EmbedHandler, config  # noqa: E402
from runtime.tokenizer import load_tokenizer  # noqa: E402
from runtime.embedder import make_embedder  # noqa: E402
from streams.common.enrichment.bootstrap import policy  # noqa: E402
from runtime.openai_client import make_openai  # noqa: E402
from tests.fakes.openai_api import FakeOpenAI  # noqa: E402
from tests.fakes.server import ThreadedServer  # noqa: E402
from tests.unit.embed.factory import record  # noqa: E402
from tests.unit.projections.factory import Chat  # noqa: E402


async def run(args: argparse.Namespace) -> None:
    fake = FakeOpenAI()
    fake.latency = args.latency
    with ThreadedServer(fake.app) as url:
        settings = Settings(_env_file=None, openai_api_key=fake.api_key, openai_base_url=f"{url}/v1")  # type: ignore[call-arg]
        client = make_openai(settings)
        assert client is not None
        embedder = make_embedder(settings, client)
        handler = EmbedHandler(config(settings), load_tokenizer(settings.embeddings_tokenizer), embedder)
        outputs = RecordingOutputs()
        runner = StageRunner("embed", handler, outputs, concurrency=settings.embed_concurrency,
                             policy=policy(settings, 3, 0.1, 1.0))  # fmt: skip
        chats = [Chat(channel="BENCH", chat_id=f"1555{i:07d}") for i in range(100)]
        records = [
            record(chats[i % 100].received(f"m{i}", " ".join(f"w{(i * 7 + j) % 5000}" for j in range(args.words)),
                                           t=i), offset=i)  # fmt: skip
            for i in range(args.messages)
        ]
        batch = settings.embed_concurrency * 4  # what attach_stage hands the runner at once
        await runner.run_batch(records[:batch])  # warm-up: connections, tokenizer
        fake.calls.clear()
        started = time.perf_counter()
        for lo in range(batch, len(records), batch):
            await runner.run_batch(records[lo : lo + batch])
        seconds = time.perf_counter() - started
        calls = fake.calls("/v1/embeddings", ok_only=True)
        chunks = sum(int(c.detail["inputs"]) for c in calls)  # type: ignore[call-overload]
        await embedder.aclose()
        await client.close()
    bound = settings.embeddings_max_requests * settings.embeddings_batch_max_inputs / args.latency
    rate = chunks / seconds
    sizes = [int(c.detail["inputs"]) for c in calls]  # type: ignore[call-overload]
    print(f"{len(records) - batch:,} messages, {chunks:,} chunks of ~{args.words} words in {seconds:.1f} s, "
          f"{len(calls)} API calls of {statistics.mean(sizes):.0f} texts on average (max {max(sizes)})")  # fmt: skip
    print(f"throughput {rate:,.0f} chunks/s; bound {settings.embeddings_max_requests} calls x "
          f"{settings.embeddings_batch_max_inputs} texts / {args.latency * 1000:.0f} ms = {bound:,.0f} chunks/s; "
          f"ratio {rate / bound:.2f}")  # fmt: skip
    cap = min(settings.embed_concurrency, settings.embeddings_max_requests * settings.embeddings_batch_max_inputs)
    print(f"(records in flight cap a call at {cap} texts; at {1000 * seconds / max(1, chunks):.2f} ms per chunk "
          "the rest is CPU: tokenising, JSON, base64, and the fake's own vectors in this process)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the fake takes per call")
    parser.add_argument("--words", type=int, default=40, help="words per message (one chunk each)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
