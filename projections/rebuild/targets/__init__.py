"""What ``msgmem projections rebuild`` can rebuild: one entry per projection, not per table.

A projection's tables are rebuilt and swapped together because they only make sense
together: chat_messages references chats, chat_message_pending holds what chat_messages
is still waiting for, and chat_message_versions the history of its texts; message_embeddings
goes with the versions and tombstones that decide what it holds; dead_letters stands alone. ``--tables`` therefore
accepts a projection name or any of its tables and selects the whole projection.

Each projection is a module here with one factory in ``PROJECTIONS``: its topics, its tables
(parents first) and the decode / prepare / write functions its live projector uses
(``base.RebuildTarget``). The messages and media projections share chat_messages' derived
text: ``texts`` says how either rebuild leaves it as a replay of both would. All of them run
in registry order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from contracts.settings import Settings
from projections.rebuild.targets.base import RebuildError, RebuildTarget
from projections.rebuild.targets.deadletters import deadletters_target
from projections.rebuild.targets.embeddings import embeddings_target
from projections.rebuild.targets.media import media_target
from projections.rebuild.targets.messages import messages_target

__all__ = ["PROJECTIONS", "RebuildError", "RebuildTarget", "resolve"]

PROJECTIONS: dict[str, Callable[[Settings], RebuildTarget]] = {
    "messages": messages_target, "media": media_target, "embeddings": embeddings_target,
    "deadletters": deadletters_target,
}  # fmt: skip


def resolve(settings: Settings, names: Sequence[str] | None) -> list[RebuildTarget]:
    """The projections named (by projection key, projection name or one of their tables), in
    registry order; every projection when ``names`` is empty or None."""
    targets = [factory(settings) for factory in PROJECTIONS.values()]
    if not names:
        return targets
    wanted = {n.strip() for name in names for n in name.split(",") if n.strip()}
    chosen = [t for t in targets if wanted & {t.key, t.name, *t.tables}]
    known = {n for t in targets for n in (t.key, t.name, *t.tables)}
    unknown = sorted(wanted - known)
    if unknown:
        raise RebuildError(f"nothing rebuilds {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return chosen
