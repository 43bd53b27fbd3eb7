"""The error every I/O adapter raises for a failure worth retrying.

It lives in the shared base, not in the stage runner, because the adapters that classify
their own failures (OpenAI, HTTP downloads, storage, Kafka reads, the result cache) are
shared by stages and the recall API alike; the runner and recall only catch it.
"""

from __future__ import annotations

from contracts.errors import SafeError


class TransientError(SafeError):
    """An I/O failure worth retrying (timeouts, 429, 5xx). Anything else is poison.
    Its message is shown in logs and dead letters: build it with ``describe_error(cause)``.

    ``retry_after``: seconds the server asked us to wait (a 429's Retry-After), if it said.
    """

    def __init__(self, *args: object, retry_after: float | None = None) -> None:
        super().__init__(*args)
        self.retry_after = retry_after


class StoreUnavailable(TransientError):
    """The project's own store (Postgres: the erasure ledger, the result cache) cannot answer.
    Not the input's fault, so a stage runner holds the record, retrying without counting its
    attempts, as it holds outputs while the broker is down: an outage never makes dead letters.
    A one-off tool (`msgmem dlq retry`, `msgmem replay`) sees it as any ``TransientError``."""
