"""Error texts that may be logged, dead-lettered and alerted: types and field paths, never values.

Dead letters, log lines and alerts are read by people who must not see a customer's text,
a phone number or a token, yet ``str(exc)`` often quotes exactly that: a parser's message
repeats its input (``invalid literal for int(): '+1555...'``), a pydantic error carries
``input_value``, Postgres says ``invalid input syntax for type json: "..."``, an HTTP
client error holds a URL with a token in it. ``describe_error`` is the one way an
exception becomes text in this project; it keeps a message only for ``SafeError``, whose
messages this code writes itself from names, paths and counts.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterator

from pydantic import BaseModel, ValidationError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}").fullmatch
_MAX_ERRORS = 5


class SafeError(Exception):
    """An error whose message is written by this code from types, field paths, setting names
    and counts, never copied from input or a secret, so ``describe_error`` shows it whole.
    Wrap a foreign exception into one with ``describe_error(cause)``, never ``{cause}``."""


def with_type(error_type: str, error: str) -> str:
    """``Type: detail`` for people, from an event's separate fields; texts written before
    ``describe_error`` existed lack the type, texts since begin with it."""
    return error if error.startswith(error_type) else f"{error_type}: {error}"


def join_path(path: str, name: str) -> str:
    """``messages[2]`` + ``text`` -> ``messages[2].text``; + ``[0]`` -> ``messages[2][0]``."""
    if not path:
        return name
    return f"{path}{name}" if name.startswith("[") else f"{path}.{name}"


def _model_fields() -> set[str]:
    """Every field name of the pydantic models loaded (walked on a failure only, never
    cached, so models defined later count too)."""
    names: set[str] = set()
    todo: list[type[BaseModel]] = [BaseModel]
    seen: set[type] = set()
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        names.update(getattr(model, "model_fields", {}))
        todo.extend(model.__subclasses__())
    return names


def field_path(loc: tuple[int | str, ...], path: str = "") -> str:
    """A pydantic error location as a field path under ``path``. A part that is no model's
    field name (a dict key, which comes from the input: a phone number, a word) shows as ``*``."""
    fields, out = _model_fields(), path
    for part in loc:
        out = join_path(out, f"[{part}]" if isinstance(part, int) else part if part in fields else "*")
    return out


def describe_error(exc: BaseException, path: str = "") -> str:
    """``exc`` as ``Type: detail`` where the detail names no input value, prefixed by ``path``
    (the failed item's place in its record) when given.

    * pydantic ``ValidationError``: ``ValidationError: int_parsing at messages[0].count; ...``
    * ``SafeError``: its own message.
    * a ``KeyError`` for a name this code looked up: ``KeyError 'id'``.
    * a database error: its SQLSTATE; an HTTP status error: its status code.
    * anything else: the type alone.
    """
    name = type(exc).__name__
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        parts = [f"{e['type']} at {field_path(e['loc'], path) or '.'}" for e in errors[:_MAX_ERRORS]]
        more = f" (+{len(errors) - _MAX_ERRORS} more)" if len(errors) > _MAX_ERRORS else ""
        return f"{name}: {'; '.join(parts)}{more}" if parts else name
    if isinstance(exc, SafeError) and str(exc):
        detail = f"{name}: {exc}"
    elif isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str) and _NAME(exc.args[0]):
        detail = f"{name} {exc.args[0]!r}"
    elif isinstance(sqlstate := getattr(exc, "sqlstate", None), str):
        detail = f"{name} (SQLSTATE {sqlstate})"
    elif isinstance(status := getattr(getattr(exc, "response", None), "status_code", None), int):
        detail = f"{name} (HTTP {status})"
    else:
        detail = name
    return f"{path}: {detail}" if path else detail


def format_exception(exc: BaseException) -> str:
    """A traceback whose exception lines are ``describe_error``'s: the frames (file, line,
    code) without any exception's message, for log records with ``exc_info``."""
    blocks: list[str] = []
    for link, how in _chain(exc):
        if how:
            blocks.append(f"\n{how}\n\n")
        blocks.append("Traceback (most recent call last):\n")
        blocks.extend(traceback.format_tb(link.__traceback__))
        blocks.append(describe_error(link) + "\n")
    return "".join(blocks).rstrip("\n")


_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"


def _chain(exc: BaseException) -> Iterator[tuple[BaseException, str]]:
    """The exception's chain, root first, each with the sentence that joins it to the one before."""
    links: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    how = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        links.append((current, how))
        if current.__cause__ is not None:
            current, how = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, how = current.__context__, _CONTEXT
        else:
            current = None
    ordered = list(reversed(links))
    # the joining sentence belongs before the later exception: shift them by one
    return iter([(ordered[0][0], "")] + [(ordered[i][0], ordered[i - 1][1]) for i in range(1, len(ordered))])
