"""The projector's error policy in one place.

A batch fails either because Postgres (or the broker) is unavailable, which only time
fixes, or because some event in it cannot be stored (a NUL byte in text or JSON, a value
out of range, a broken constraint), which no retry fixes. The first kind is retried
without end (the projector falls behind but loses nothing); the second is retried a few
times, then the batch is bisected to find the events to dead-letter. Schema or privilege
errors (a migration not applied) are treated as the first kind on purpose: bisecting them
would dead-letter every event instead of waiting for the operator. A Python error while
turning an event into rows counts as poison too: it is deterministic for that event.
"""

from __future__ import annotations

import asyncpg

# SQLSTATE classes that name the data of the statement, hence some event of the batch:
# 22 data exception, 23 integrity constraint violation, 54 program limit exceeded
# (an index row or a JSON value too large).
_POISON_CLASSES = ("22", "23", "54")
# Python errors raised while turning an event into rows: a shape the logic does not handle.
# Deterministic for that event, so retrying is useless and blocking the partition is worse.
_LOGIC_ERRORS = (ValueError, TypeError, LookupError, AttributeError, ArithmeticError)


class ProjectionError(Exception):
    """Root of the projector's own errors."""


class BatchAbandoned(ProjectionError):
    """The batch was given up because its partitions were revoked or the projector is stopping.

    Nothing past the last committed transaction is lost: the next owner seeks to the offsets
    stored in Postgres.
    """


class OffsetsBehind(ProjectionError):
    """Postgres holds offsets below what this projector applied and committed: commits it was
    told were durable are gone (a crash with synchronous_commit off, a failover to a replica
    that lagged). The records from ``stored`` on must be applied again."""

    def __init__(self, stored: dict) -> None:  # type: ignore[type-arg]
        super().__init__(f"stored offsets behind this projector on {len(stored)} partition(s)")
        self.stored = stored


class UsersTableError(ProjectionError):
    """USERS_TABLE names a table that cannot be read as (id, phone)."""


def is_poison(exc: BaseException) -> bool:
    """True when retrying cannot help because the batch's data is what fails."""
    if isinstance(exc, asyncpg.InterfaceError) and isinstance(exc, ValueError):
        return True  # asyncpg's client-side DataError: a value it cannot encode
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None) or ""
        return sqlstate[:2] in _POISON_CLASSES
    if isinstance(exc, asyncpg.InterfaceError | OSError | TimeoutError):
        return False
    return isinstance(exc, _LOGIC_ERRORS)
