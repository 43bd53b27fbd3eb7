"""What keeps secrets and personal data out of every process's log output.

Three layers, installed by ``runtime.logging_setup.configure_logging``:

* HTTP client libraries log each request's URL at INFO/DEBUG (httpx: ``HTTP Request: POST
  https://api.telegram.org/bot<token>/sendMessage``); their loggers are held at WARNING.
* ``PrivateFormatter`` writes tracebacks with ``contracts.errors.describe_error`` in place of
  each exception's message, which may quote input (a phone number, a message text).
* It also masks credential shapes in every line it writes (a Telegram bot token in a path,
  a Bearer token, ``apikey=``/``token=`` parameters, a password in a URL), for whatever a
  library says that the first two layers did not foresee.
"""

from __future__ import annotations

import logging
import re

from contracts.errors import format_exception

#: Loggers that print request URLs (with any token in their path or query) below WARNING.
HTTP_CLIENT_LOGGERS = ("httpx", "httpcore", "aiohttp", "urllib3", "hpack", "h11", "uvicorn.access")

_MASK = "<redacted>"
_SECRETS = (
    (re.compile(r"(/bot)\d+:[A-Za-z0-9_-]+"), rf"\1{_MASK}"),  # Telegram: the token is the path
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1\2{_MASK}"),
    (re.compile(r"(?i)\b((?:hub\.)?verify_token|api_?key|access_token|token|secret|password)=[^&\s\"']+"),
     rf"\1={_MASK}"),
    (re.compile(r"(?i)\b(apikey|api_?key|authorization)(\"?\s*[:]\s*\"?)[^\s\",}]+"), rf"\1\2{_MASK}"),
    (re.compile(r"(://[^:/@\s]+:)[^@/\s]+@"), rf"\1{_MASK}@"),  # user:password@host
)  # fmt: skip


def redact(text: str) -> str:
    """``text`` with every credential shape above masked."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def quiet_http_clients() -> None:
    """Hold the HTTP client loggers at WARNING: their INFO and DEBUG lines carry URLs."""
    for name in HTTP_CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


class PrivateFormatter(logging.Formatter):
    """A formatter whose tracebacks name exception types, not messages, and whose lines are redacted."""

    def formatException(self, ei: object) -> str:  # noqa: N802 - logging's name
        exc = ei[1] if isinstance(ei, tuple) and len(ei) == 3 else None
        return format_exception(exc) if isinstance(exc, BaseException) else super().formatException(ei)  # type: ignore[arg-type]

    def format(self, record: logging.LogRecord) -> str:
        cached, record.exc_text = record.exc_text, None  # another handler's plain traceback
        try:
            return redact(super().format(record))
        finally:
            record.exc_text = cached
