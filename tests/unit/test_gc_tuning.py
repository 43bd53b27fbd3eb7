"""settle_gc: start-up objects frozen, young collections rarer."""

from __future__ import annotations

import gc

from runtime.gc_tuning import YOUNG_THRESHOLD, settle_gc


def test_settle_gc_freezes_start_up_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        settle_gc()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD > before[0]
        assert gc.isenabled()  # cycles are still collected, only less often
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
