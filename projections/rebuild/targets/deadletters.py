"""The dead-letter projection as the rebuild sees it: wa.deadletter -> dead_letters, with the live
deadletters_projector's decode, fold and SQL.

Every column comes from the events (failed_at, retried_at, the offsets applied), none from the
rebuild's clock but ``updated_at``; a letter's events share one partition (keyed by stage), so
the workers never split one letter's history.
"""

from __future__ import annotations

from contracts.settings import Settings
from projections.deadletters.logic import fold
from projections.deadletters.main import PROJECTOR
from projections.deadletters.store import DeadLettersWriter
from projections.rebuild.targets.base import RebuildTarget


def deadletters_target(_settings: Settings) -> RebuildTarget:
    writer = DeadLettersWriter()
    return RebuildTarget(
        key="deadletters", name=PROJECTOR.name, topics=PROJECTOR.process.inputs, tables=("dead_letters",),
        clock_columns=frozenset({"updated_at"}), decode=PROJECTOR.decode, prepare=fold, write=writer.write_changes,
    )  # fmt: skip
