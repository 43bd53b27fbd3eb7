"""One line, not a traceback, when a `msgmem` command cannot reach the broker, Postgres or ingest.

A command fails deep inside aiokafka or asyncpg when the stack is down; which of the two
gave up is read from the exception (and, for a bare ``OSError``, from the library whose
code raised it), and the line names the address tried and how to point the command at a
stack, never a password.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from urllib.parse import urlsplit

from contracts.errors import describe_error
from contracts.settings import Settings

_HINT = "is `msgmem dev` running? (or {how})"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _raised_in(exc: BaseException, package: str) -> bool:
    return any(f"/{package}/" in frame.filename for frame in traceback.extract_tb(exc.__traceback__))


def _postgres_address(database_url: str) -> str:
    parts = urlsplit(database_url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}"


def _is_kafka(exc: BaseException) -> bool:
    from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NoBrokersAvailable

    return isinstance(exc, KafkaConnectionError | KafkaTimeoutError | NoBrokersAvailable) or (
        isinstance(exc, OSError | TimeoutError) and _raised_in(exc, "aiokafka")
    )


def _is_postgres(exc: BaseException) -> bool:
    import asyncpg

    refused = (asyncpg.PostgresConnectionError, asyncpg.InvalidAuthorizationSpecificationError,
               asyncpg.InvalidCatalogNameError, asyncpg.CannotConnectNowError)  # fmt: skip
    return isinstance(exc, refused) or (isinstance(exc, OSError | TimeoutError) and _raised_in(exc, "asyncpg"))


def _http_origin(exc: BaseException) -> str | None:
    """``http://host:port`` of an HTTP request that could not be sent (`msgmem send`), else None."""
    import httpx

    if not isinstance(exc, httpx.TransportError):
        return None
    try:
        url = exc.request.url
    except RuntimeError:  # raised without a request
        return "the server"
    return f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")


def unreachable(exc: BaseException, settings: Settings) -> str | None:
    """The line to print when ``exc`` says the broker, Postgres or ingest could not be reached, else None."""
    for link in _chain(exc):
        if origin := _http_origin(link):
            where, how = origin, "pass --url"
        elif _is_kafka(link):
            where, how = f"the Kafka broker at {settings.kafka_bootstrap_servers}", "set KAFKA_BOOTSTRAP_SERVERS"
        elif _is_postgres(link):
            where, how = f"Postgres at {_postgres_address(settings.database_url)}", "set DATABASE_URL"
        else:
            continue
        return f"cannot reach {where} ({describe_error(link)}); {_HINT.format(how=how)}"
    return None
