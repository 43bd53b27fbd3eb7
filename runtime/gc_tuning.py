"""The garbage collector of a long-running server process, set once start-up is done.

Two costs, both measured on ingest (2 cores, 64 concurrent webhooks):
- Every full collection re-scanned the whole framework graph loaded at start-up:
  ``gc.freeze()`` moves it to a permanent generation (a third of the throughput, and p99
  tripled, before it).
- Young collections ran every 700 net allocations, and each one walked the objects of the
  requests waiting on the broker's acknowledgement (tens of coroutine frames each), which
  then went on to be walked again by the middle generation. With 20,000 / 50 / 100,
  ingest used 14 and 35 µs less CPU per webhook in two paired runs (of ~120); the bare
  endpoint of bench/ingest.py, which holds no waiting requests, gained nothing measurable.
  Cyclic garbage waits a little longer to be freed: a few MB at most.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
MIDDLE_THRESHOLD = 50
OLD_THRESHOLD = 100


def settle_gc() -> None:
    """Freeze what start-up left alive and collect the young generations less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
