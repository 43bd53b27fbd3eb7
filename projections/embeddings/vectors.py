"""pgvector's ``vector`` in asyncpg's binary protocol, without the pgvector package.

Binary form: dimensions (uint16), an unused uint16, then the values as big-endian float4.
Values are taken as an ``array('f')``, a sequence of floats, or the base64 float32 of the
wa.embeddings contract, and read back as ``array('f')``; no text formatting of 1536 floats
per row on either side.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Sequence
from typing import Any

import asyncpg

from contracts.embeddings import decode_vector

_HEAD = struct.Struct(">HH")


def to_binary(value: Any) -> bytes:
    if isinstance(value, str):
        values = decode_vector(value)
    elif isinstance(value, array) and value.typecode == "f":
        values = array("f", value)
    else:
        values = array("f", value)
    if sys.byteorder == "little":
        values.byteswap()
    return _HEAD.pack(len(values), 0) + values.tobytes()


def from_binary(data: bytes) -> array:  # type: ignore[type-arg]
    dims, _unused = _HEAD.unpack_from(data)
    values = array("f", data[_HEAD.size : _HEAD.size + 4 * dims])
    if sys.byteorder == "little":
        values.byteswap()
    return values


async def register_vector(conn: asyncpg.Connection) -> None:
    """Use as a pool's ``init``. The type lives where the extension was created (``public``
    here, ``extensions`` on Supabase)."""
    schema = await conn.fetchval(
        "select n.nspname from pg_type t join pg_namespace n on n.oid = t.typnamespace where t.typname = 'vector'"
    )
    if schema is None:
        raise RuntimeError("the vector extension is not installed: run `msgmem migrate`")
    await conn.set_type_codec("vector", schema=schema, encoder=to_binary, decoder=from_binary, format="binary")


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity, for tests and benchmarks."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = sum(x * x for x in a) ** 0.5
    nb = sum(y * y for y in b) ** 0.5
    return dot / (na * nb) if na and nb else 0.0
