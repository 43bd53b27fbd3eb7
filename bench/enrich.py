"""Enrichment benchmark: transcriptions/s against the concurrency/latency bound, and the media
worker's memory while it streams a 100 MB file.

    .venv/bin/python bench/enrich.py [--transcriptions 240] [--latency 0.3] [--concurrency N]
                                     [--media-mb 100] [--rounds 3]

Starts a throw-away local stack (Kafka + Postgres, as the tests do) and, in this process, the
fake OpenAI-compatible server and the fake provider media server (tests/fakes). Then:
  1. runs the transcribe worker (``python -m streams.transcribe``) with TRANSCRIBE_CONCURRENCY
     (default: the configured value) against the fake at ``--latency`` s a call, feeds it
     distinct voice notes (no cache hits) and prints transcriptions/s and its ratio to the
     bound concurrency / latency (target >= 80%);
  2. runs the media worker (``python -m streams.media``), lets it settle, and samples its
     resident memory every 10 ms while it downloads a generated ``--media-mb`` MB file from the
     fake Whapi server into the local store: peak minus idle (target: a few MB; it streams).
Prints the median of ``--rounds`` rounds for each.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contracts import media, messages  # noqa: E402
from contracts.settings import Settings  # noqa: E402
from runtime.kafka import end_offsets, make_producer, read_range  # noqa: E402
from msgmem.localstack.stack import start_stack  # noqa: E402
from runtime.media_storage import LocalMediaStore  # noqa: E402
from tests.fakes.events import media_message, put_fixture, stored_event, with_media  # noqa: E402
from tests.fakes.openai_api import FakeOpenAI  # noqa: E402
from tests.fakes.provider_media import FakeProviderMedia  # noqa: E402
from tests.fakes.server import ThreadedServer  # noqa: E402
from tests.fakes.stages import running_stage  # noqa: E402


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def publish(settings: Settings, topic: str, events: list, codec) -> None:  # type: ignore[no-untyped-def,type-arg]
    producer = make_producer(settings)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, codec(e), key=e.chat_key.encode(), headers=[("mm-type", e.type.encode())])
            for e in events
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def wait_until(predicate, timeout: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (result := await predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark round did not finish")
        await asyncio.sleep(0.05)
    return result


async def transcription_round(settings: Settings, fake: FakeOpenAI, store: LocalMediaStore, n: int, latency: float) -> float:
    """Transcriptions/s over ``n`` distinct voice notes (distinct hashes: every one is a call)."""
    fake.calls.clear()
    run = uuid.uuid4().hex[:8]
    events = [
        stored_event("voice_note.ogg", "voice", store=store, message=f"{run}-{i}",
                     sha256=hashlib.sha256(f"{run}-{i}".encode()).hexdigest(),
                     path=stored_event("voice_note.ogg", "voice").path)
        for i in range(n)
    ]  # fmt: skip
    await publish(settings, media.TOPIC, events, media.encode_event)
    calls = await wait_until(lambda: _calls_done(fake, n), timeout=n * latency + 120)
    first_start = min(c.at for c in calls) - latency
    last_end = max(c.at for c in calls)
    return n / (last_end - first_start)


async def _calls_done(fake: FakeOpenAI, n: int):  # type: ignore[no-untyped-def]
    calls = fake.calls("/v1/audio/transcriptions", ok_only=True)
    return calls if len(calls) >= n else None


async def memory_round(settings: Settings, fake: FakeProviderMedia, pid: int, size: int, media_dir: Path) -> tuple[float, float]:
    """(idle MiB, peak MiB) of the media worker while it stores one ``size``-byte file."""
    media_id = f"big-{uuid.uuid4().hex[:8]}"
    blob = fake.add_synthetic(media_id, size)
    base = media_message("whapi", "document_pdf")
    event = with_media(
        base.model_copy(update={"provider_message_id": media_id, "message_id": media_id}),
        provider_media_id=media_id, size_bytes=size, sha256=blob.sha256,
    )  # fmt: skip
    samples = []
    for _ in range(100):  # a second of idle
        samples.append(rss_kib(pid))
        await asyncio.sleep(0.01)
    idle = statistics.median(samples)
    start = await end_offsets(settings, media.TOPIC)
    await publish(settings, messages.TOPIC, [event], messages.encode_event)
    peak = idle
    deadline = time.monotonic() + 300
    stored = None
    while stored is None and time.monotonic() < deadline:
        for _ in range(20):
            peak = max(peak, rss_kib(pid))
            await asyncio.sleep(0.01)
        end = await end_offsets(settings, media.TOPIC)
        for record in await read_range(settings, media.TOPIC, start, end):
            found = media.decode_event(record.value)
            if found.message_id == media_id:
                stored = found
    if not isinstance(stored, media.MediaStored) or stored.sha256 != blob.sha256:
        raise RuntimeError(f"the big file was not stored: {stored}")
    (media_dir / stored.path).unlink()
    return idle / 1024, peak / 1024


async def run(args: argparse.Namespace, settings: Settings, root: Path) -> None:
    configured = Settings()  # the environment's TRANSCRIBE_CONCURRENCY, like a deployed worker
    concurrency = args.concurrency or configured.transcribe_concurrency
    store = LocalMediaStore(root / "media", "chat-media")
    await put_fixture(store, "voice_note.ogg")

    fake_ai = FakeOpenAI()
    fake_ai.latency = args.latency
    rates = []
    with ThreadedServer(fake_ai.app) as url, running_stage(
        "streams.transcribe", settings, root, OPENAI_API_KEY=fake_ai.api_key, OPENAI_BASE_URL=f"{url}/v1",
        MEDIA_LOCAL_DIR=str(store.root), TRANSCRIBE_CONCURRENCY=str(concurrency),
    ):  # fmt: skip
        await transcription_round(settings, fake_ai, store, concurrency * 2, args.latency)  # warm-up
        for _ in range(args.rounds):
            rates.append(await transcription_round(settings, fake_ai, store, args.transcriptions, args.latency))
    bound = concurrency / args.latency
    rate = statistics.median(rates)
    print(f"transcriptions: concurrency {concurrency}, {args.latency * 1000:.0f} ms a call, {args.transcriptions} per round")
    print(f"  {rate:.1f}/s median of {[round(r, 1) for r in rates]}; bound {bound:.1f}/s; "
          f"ratio {rate / bound:.0%} (target >= 80%)")

    fake_media = FakeProviderMedia()
    size = args.media_mb * 1000 * 1000
    idles, peaks = [], []
    media_dir = root / "media-bench"
    with ThreadedServer(fake_media.app) as url, running_stage(
        "streams.media", settings, root, WHAPI_API_URL=url, WHAPI_API_TOKEN="test-whapi-token", MEDIA_TRUSTED_ORIGINS=url,
        MEDIA_LOCAL_DIR=str(media_dir), MEDIA_MAX_BYTES=str(size + 1), MEDIA_SWEEP_INTERVAL_SECONDS="0",
    ) as child:  # fmt: skip
        assert child.pid is not None
        await asyncio.sleep(3)  # let the worker finish starting up
        for _ in range(args.rounds):
            idle, peak = await memory_round(settings, fake_media, child.pid, size, media_dir)
            idles.append(idle)
            peaks.append(peak)
    deltas = [p - i for p, i in zip(peaks, idles)]
    print(f"media worker streaming a {args.media_mb} MB file to the local store:")
    print(f"  idle {statistics.median(idles):.1f} MiB, peak {statistics.median(peaks):.1f} MiB, "
          f"peak - idle {statistics.median(deltas):.1f} MiB median of {[round(d, 1) for d in deltas]}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transcriptions", type=int, default=240)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--concurrency", type=int, default=None, help="default: TRANSCRIBE_CONCURRENCY")
    parser.add_argument("--media-mb", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="msgmem-bench-") as tmp:
        root = Path(tmp)
        (root / "stack").mkdir()
        stack = start_stack(root / "stack")
        try:
            asyncio.run(run(args, stack.settings, root))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
