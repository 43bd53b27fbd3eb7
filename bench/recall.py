"""Recall benchmark: latency of recall over N chunks with the HNSW index, and recall@10 of the
index against exact search.

    .venv/bin/python bench/recall.py [--n 1000000] [--chats 10000] [--queries 300] [--sample 100]
                                     [--database-url postgresql://...] [--keep]

Needs numpy (``pip install -e '.[bench]'``). Without ``--database-url`` it starts an embedded
Postgres of its own (data under a temporary directory) and applies the migrations.

1. Loads N synthetic chunks of EMBEDDINGS_DIMENSIONS (1536) into message_embeddings with a
   binary COPY, spread over ``--chats`` chats (100 chunks each at the defaults, so the
   per-chat path is the realistic one). Vectors are clustered like text embeddings: around
   ``--topics`` centres, near a ``--latent-dims``-dimensional subspace (see ``Data``; 0 for
   the isotropic worst case), unit length. Chunk texts carry a word of their topic and an
   order number, for the full-text side.
2. Builds the HNSW index (m 16, ef_construction 64, as migration 0001) after the load, with
   maintenance_work_mem ``--maintenance-work-mem`` and ``--workers`` parallel workers, and
   reports the build rate (vectors/s) and the extrapolated time for 1M.
3. Per chat (the recall API's path): p50/p95 of ``match_session_messages`` (exact for these
   chat sizes) and of the full hybrid recall statement (``projections.recall.search``,
   vector + full text, fused), each on chats not queried before, and the hybrid again as
   a follow-up question on the same chat; and the same per-chat queries sent down the
   function's large-chat branch (exact_chunks 0: HNSW allowed, iterative scan) against the
   exact answer (for ~100-chunk chats pgvector 0.8's cost model still picks the chat index).
4. Global (one index over every chat): p50/p95 of an HNSW top-10 at several ef_search, and
   recall@10 against exact top-10 computed with numpy over the regenerated vectors, on a
   sample of ``--sample`` queries.
Targets: p95 <= 50 ms, recall@10 >= 0.95.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

try:
    import numpy as np
except ImportError:  # pragma: no cover
    sys.exit("bench/recall.py needs numpy: pip install -e '.[bench]'")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contracts.settings import Settings  # noqa: E402
from msgmem.localstack.postgres import LocalPostgres  # noqa: E402
from msgmem.localstack.processes import file_sink, free_port  # noqa: E402
from scratch import scratch_dir  # noqa: E402  (bench/scratch.py)
from msgmem.migrate import migrate  # noqa: E402
from projections.embeddings.vectors import register_vector  # noqa: E402
from projections.recall.search import RECALL_SQL, RRF_K  # noqa: E402

BLOCK = 20_000
COLUMNS = ["message_id", "chunk_index", "chat_key", "source", "chunk_text", "start_token", "end_token", "chunk_count",
           "embedding", "model"]  # fmt: skip
WORDS = ["delivery", "invoice", "refund", "address", "payment", "courier", "damaged", "discount", "warranty", "size"]


class Data:
    """Deterministic synthetic chunks: block b is regenerated identically from the seed.

    ``latent`` > 0 (the default, 32): each vector lives near a ``latent``-dimensional
    subspace of the full space, like real text embeddings, whose neighbourhoods have a low
    intrinsic dimension: a topic centre plus noise in the subspace (cosine ~0.6 to the
    centre there), mapped by a random orthonormal basis, plus a small residual in all
    dimensions. ``latent`` 0: topic centre plus isotropic noise in all dimensions, the worst
    case for any graph index (every member of a topic is nearly equidistant from a query,
    so the "true" top 10 are decided by noise); kept to show that case.
    """

    def __init__(self, n: int, dims: int, chats: int, topics: int, seed: int = 7, latent: int = 32) -> None:
        self.n, self.dims, self.chats, self.topics, self.seed, self.latent = n, dims, chats, topics, seed, latent
        rng = np.random.default_rng(seed)
        space = latent or dims
        centres = rng.standard_normal((topics, space), dtype=np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        self.noise = float(np.sqrt(1.78 / space))  # |noise| ~ 1.33 |centre|: cosine ~0.6 to the centre
        # Subspace -> full space: orthonormal rows; the residual is ~30% of a vector's length.
        self.basis = np.linalg.qr(rng.standard_normal((dims, latent)))[0].T.astype(np.float32) if latent else None
        self.residual = float(np.sqrt(0.25 / dims))
        self.chat_of = rng.integers(0, chats, n, dtype=np.int32)
        self.topic_of = rng.integers(0, topics, n, dtype=np.int32)

    def _embed(self, rng: np.random.Generator, z: np.ndarray) -> np.ndarray:
        if self.basis is not None:
            z = z @ self.basis + rng.standard_normal((z.shape[0], self.dims), dtype=np.float32) * self.residual
        return (z / np.linalg.norm(z, axis=1, keepdims=True)).astype(np.float32)

    def block(self, b: int) -> np.ndarray:
        lo, hi = b * BLOCK, min(self.n, (b + 1) * BLOCK)
        rng = np.random.default_rng(self.seed * 1_000_003 + b)
        space = self.centres.shape[1]
        z = self.centres[self.topic_of[lo:hi]] + rng.standard_normal((hi - lo, space), dtype=np.float32) * self.noise
        return self._embed(rng, z)

    def blocks(self) -> int:
        return (self.n + BLOCK - 1) // BLOCK

    def query_near(self, rng: np.random.Generator, row: int) -> np.ndarray:
        """A question about row ``row``'s topic: its centre plus fresh noise (not a stored vector)."""
        space = self.centres.shape[1]
        z = self.centres[self.topic_of[row]] + rng.standard_normal(space, dtype=np.float32) * self.noise
        return self._embed(rng, z[None, :])[0]


def chat_key(c: int) -> str:
    return f"bench:CH:{c:06d}"


def copy_stream(data: Data) -> AsyncIterator[bytes]:
    """PGCOPY binary: header, one tuple per chunk (10 fields), trailer."""
    text = struct.Struct(">i")

    def field(value: bytes) -> bytes:
        return text.pack(len(value)) + value

    int4 = struct.Struct(">ii")
    head = struct.pack(">HH", data.dims, 0)
    model = field(b"synthetic")
    source = field(b"text")

    async def gen() -> AsyncIterator[bytes]:
        yield b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
        for b in range(data.blocks()):
            vectors = data.block(b).astype(">f4")
            out = bytearray()
            lo = b * BLOCK
            for j in range(vectors.shape[0]):
                i = lo + j
                words = f"{WORDS[data.topic_of[i] % len(WORDS)]} topic{data.topic_of[i]} order {i % 99991} chunk {i}"
                out += struct.pack(">h", len(COLUMNS))
                out += field(f"b{i}".encode()) + int4.pack(4, 0) + field(chat_key(int(data.chat_of[i])).encode())
                out += source + field(words.encode()) + int4.pack(4, 0) + int4.pack(4, 700) + int4.pack(4, 1)
                out += field(head + vectors[j].tobytes()) + model
            yield bytes(out)
        yield struct.pack(">h", -1)

    return gen()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, 50) * 1000:.1f} ms, p95 {pct(values, 95) * 1000:.1f} ms"


async def load(conn: asyncpg.Connection, data: Data) -> float:
    await conn.execute("truncate message_embeddings")
    await conn.execute("drop index if exists message_embeddings_embedding_hnsw_idx")
    started = time.perf_counter()
    await conn.copy_to_table("message_embeddings", source=copy_stream(data), columns=COLUMNS, format="binary")
    await conn.execute("vacuum analyze message_embeddings")
    return time.perf_counter() - started


async def build_index(conn: asyncpg.Connection, memory: str, workers: int) -> float:
    await conn.execute(f"set maintenance_work_mem = '{memory}'")
    await conn.execute(f"set max_parallel_maintenance_workers = {workers}")
    started = time.perf_counter()
    await conn.execute(
        "create index message_embeddings_embedding_hnsw_idx on message_embeddings using hnsw (embedding vector_cosine_ops)"
    )
    return time.perf_counter() - started


async def timed(conn: asyncpg.Connection, sql: str, *args: object) -> tuple[float, list[asyncpg.Record]]:
    started = time.perf_counter()
    rows = await conn.fetch(sql, *args)
    return time.perf_counter() - started, rows


def exact_top10(data: Data, queries: np.ndarray) -> list[set[str]]:
    """Exact global top-10 by cosine (vectors are unit length: the largest dot products)."""
    best_scores = np.full((len(queries), 10), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), 10), dtype=np.int64)
    for b in range(data.blocks()):
        scores = queries @ data.block(b).T
        both_scores = np.concatenate([best_scores, scores], axis=1)
        both_ids = np.concatenate([best_ids, np.arange(b * BLOCK, b * BLOCK + scores.shape[1])[None, :].repeat(len(queries), 0)], axis=1)
        top = np.argpartition(-both_scores, 10, axis=1)[:, :10]
        best_scores = np.take_along_axis(both_scores, top, 1)
        best_ids = np.take_along_axis(both_ids, top, 1)
    return [{f"b{i}" for i in row} for row in best_ids]


async def run(args: argparse.Namespace, url: str) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    dims = args.dims or settings.embeddings_dimensions
    data = Data(args.n, dims, args.chats, args.topics, latent=args.latent_dims)
    conn = await asyncpg.connect(url)
    await register_vector(conn)
    print(f"N={args.n:,} chunks x {dims} dims, {args.chats:,} chats (~{args.n // args.chats} chunks each), "
          f"{args.topics} topics, " + (f"{args.latent_dims}-dim latent structure" if args.latent_dims else
          "isotropic noise (worst case)"), flush=True)  # fmt: skip
    if not args.skip_load:
        seconds = await load(conn, data)
        print(f"load (binary COPY + vacuum analyze): {seconds:.0f} s, {args.n / seconds:,.0f} rows/s", flush=True)
        seconds = await build_index(conn, args.maintenance_work_mem, args.workers)
        rate = args.n / seconds
        print(f"HNSW build (m 16, ef_construction 64, {args.workers} parallel workers): {seconds:.0f} s, "
              f"{rate:,.0f} vectors/s; 1M would take ~{1_000_000 / rate / 60:.0f} min at this rate "
              "(the rate falls slowly as the graph grows)", flush=True)  # fmt: skip
    size = await conn.fetchval("select pg_size_pretty(pg_total_relation_size('message_embeddings'))")
    index = await conn.fetchval("select pg_size_pretty(pg_relation_size('message_embeddings_embedding_hnsw_idx'))")
    print(f"table with TOAST and indexes: {size}; HNSW index: {index}", flush=True)

    rng = np.random.default_rng(11)
    rows = rng.integers(0, args.n, args.queries)
    queries = [data.query_near(rng, int(r)) for r in rows]
    chats = [chat_key(int(data.chat_of[int(r)])) for r in rows]
    texts = [f"what did they say about the {WORDS[data.topic_of[int(r)] % len(WORDS)]} of order {int(r) % 99991}"
             for r in rows]  # fmt: skip

    # Each statement on chats it has not touched yet (their rows are in the OS cache at best,
    # not in shared_buffers: what a question about an idle chat costs), then once more on the
    # same chat (what a follow-up question costs).
    half = len(queries) // 2
    per_chat, hybrid, again = [], [], []
    for q, c in zip(queries[:half], chats[:half], strict=True):
        seconds, _ = await timed(conn, "select * from match_session_messages($1, $2, 10, 0.0)", c, q)
        per_chat.append(seconds)
    for q, c, t in zip(queries[half:], chats[half:], texts[half:], strict=True):
        seconds, _ = await timed(conn, RECALL_SQL, c, q, t, 30, 0.3, 20_000, 100, RRF_K, 10)
        hybrid.append(seconds)
        seconds, _ = await timed(conn, RECALL_SQL, c, q, t, 30, 0.3, 20_000, 100, RRF_K, 10)
        again.append(seconds)
    print(f"per chat, match_session_messages top 10 (exact, chat index), first question: {ms(per_chat)}", flush=True)
    print(f"per chat, full hybrid recall (vector + full text, RRF), first question: {ms(hybrid)}; "
          f"follow-up on the same chat: {ms(again)}", flush=True)  # fmt: skip

    forced, agree = [], []
    for q, c in list(zip(queries, chats, strict=True))[: args.sample]:
        _, exact = await timed(conn, "select message_id from match_session_messages($1, $2, 10, -1.0)", c, q)
        seconds, approx = await timed(conn, "select message_id from match_session_messages($1, $2, 10, -1.0, 0, 100)", c, q)
        forced.append(seconds)
        truth = {r["message_id"] for r in exact}
        agree.append(len(truth & {r["message_id"] for r in approx}) / max(1, len(truth)))
    print(f"per chat down the large-chat branch (HNSW allowed, iterative scan, ef_search 100): {ms(forced)}, "
          f"recall@10 {np.mean(agree):.3f} vs exact", flush=True)  # fmt: skip

    sample = np.stack(queries[: args.sample])
    started = time.perf_counter()
    truth_sets = exact_top10(data, sample)
    print(f"exact global top-10 for {args.sample} queries (numpy over regenerated vectors): "
          f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    for ef in args.ef_search:
        await conn.execute(f"set hnsw.ef_search = {ef}")
        latencies, found = [], []
        for i, q in enumerate(queries):
            seconds, got = await timed(
                conn, "select message_id from message_embeddings order by embedding <=> $1 limit 10", q
            )
            latencies.append(seconds)
            if i < args.sample:
                found.append(len(truth_sets[i] & {r["message_id"] for r in got}) / 10)
        print(f"global HNSW top 10, ef_search {ef}: {ms(latencies)}, recall@10 {np.mean(found):.3f}", flush=True)
    await conn.execute("reset hnsw.ef_search")
    plan = await conn.fetch("explain select message_id from message_embeddings order by embedding <=> $1 limit 10",
                            queries[0])  # fmt: skip
    assert any("hnsw" in r[0] for r in plan), "the global query did not use the HNSW index"
    await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="chunks (default: the issue's 1,000,000)")
    parser.add_argument("--dims", type=int, default=0, help="dimensions (default EMBEDDINGS_DIMENSIONS)")
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--topics", type=int, default=2_000)
    parser.add_argument("--latent-dims", type=int, default=32,
                        help="intrinsic dimension of the synthetic vectors (0: isotropic noise, the worst case)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--sample", type=int, default=100, help="queries checked against exact search")
    parser.add_argument("--ef-search", type=int, nargs="+", default=[40, 100, 200])
    parser.add_argument("--maintenance-work-mem", default="10GB")
    parser.add_argument("--workers", type=int, default=2, help="max_parallel_maintenance_workers")
    parser.add_argument("--database-url", help="a migrated database (else an embedded Postgres is started)")
    parser.add_argument("--skip-load", action="store_true", help="reuse the rows and index already loaded")
    parser.add_argument("--keep", help="directory for the embedded Postgres's data (kept after the run)")
    args = parser.parse_args()
    if args.dims and args.dims != 1536:
        sys.exit("message_embeddings.embedding is vector(1536): other sizes need a migration")
    if args.database_url:
        await run(args, args.database_url)
        return
    if args.keep:
        await on_embedded_postgres(args, Path(args.keep))
        return
    with scratch_dir("msgmem-bench-recall-") as root:
        await on_embedded_postgres(args, root)


async def on_embedded_postgres(args: argparse.Namespace, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    postgres = LocalPostgres(root / "postgres", free_port(), durable=False, sink=file_sink(root / "postgres.log"))
    postgres.start()
    try:
        postgres.wait_ready(60)
        await migrate(postgres.database_url)
        await run(args, postgres.database_url)
    finally:
        postgres.stop()


if __name__ == "__main__":
    asyncio.run(main())
