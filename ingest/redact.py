"""Taking a secret out of a delivery's body before it is appended to wa.raw.

Evolution puts its instance ``apikey`` in every webhook body. Once the key is verified it
has no further use, and kept on the topic it would reach every consumer, every replay and
every dead letter (``msgmem dlq show``). ``redact_keys`` replaces the value of each
``"apikey"`` member, wherever it is, with ``"[redacted]"``, editing the bytes in place so
the rest of the body stays exactly as received; should the bytes not allow that (a key
written with escapes, say), the body is re-serialised from the parsed payload instead.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

REDACTED = "[redacted]"

_STRING = rb'"(?:[^"\\]|\\.)*"'
_SCALAR = rb"[^\s,}\]]+"


def _member(key: str) -> re.Pattern[bytes]:
    return re.compile(rb'("' + re.escape(key.encode()) + rb'"\s*:\s*)(?:' + _STRING + rb"|" + _SCALAR + rb")", re.S)


def _holds(payload: Any, key: str, *, unless: object = None) -> bool:
    """Whether any object in ``payload`` has member ``key`` (with a value other than ``unless``)."""
    stack = [payload]
    while stack:  # iterative: a body may nest deeper than Python's recursion limit
        node = stack.pop()
        if isinstance(node, dict):
            if key in node and node[key] != unless:
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _replaced(payload: Any, key: str) -> Any:
    if isinstance(payload, dict):
        return {k: REDACTED if k == key else _replaced(v, key) for k, v in payload.items()}
    if isinstance(payload, list):
        return [_replaced(v, key) for v in payload]
    return payload


def redact_keys(body: bytes, payload: Any, key: str) -> bytes | None:
    """``body`` with every ``key`` member's value replaced by ``REDACTED``; None when
    ``payload`` (the parsed body) has no such member."""
    if not _holds(payload, key):
        return None
    edited = _member(key).sub(rb'\1"' + REDACTED.encode() + rb'"', body)
    try:
        if not _holds(orjson.loads(edited), key, unless=REDACTED):
            return edited
    except orjson.JSONDecodeError:
        pass
    return orjson.dumps(_replaced(payload, key))
