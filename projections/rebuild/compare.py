"""Row counts, checksums and differences between a live table and its rebuilt twin.

A table's checksum is the sum of a 64-bit hash per row, over every column but the clocks
(``RebuildTarget.clock_columns``). Not an md5 of the ordered rows: that needs a sort and one
string of every row (a million messages with their raw events pass Postgres' 1 GB limit),
while a sum needs neither, and per-row hashes joined on the primary key say which rows differ.
Rows are hashed with ``hash_record_extended`` (no text rendering, ~3x faster than md5 of the
row text); a column of a type without a hash function (pgvector's ``vector``, ``tsvector``) is
hashed in its binary send form (a 1536-float vector: ~4x faster than as text), else as text.

Only when the checksums differ is the slower full join run, to count rows missing on either
side or changed, and to name the columns that differ in a few sample rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import asyncpg
import orjson

from projections.rebuild.ddl import qi

SAMPLES = 5


@dataclass(frozen=True)
class Columns:
    compared: tuple[str, ...]
    hashed: tuple[str, ...]  # SQL expressions over alias t, one per compared column
    key: tuple[tuple[str, str], ...]  # primary key: (name, SQL type)

    def row_hash(self) -> str:
        return f"hash_record_extended(row({', '.join(self.hashed)}), 0)"

    def key_json(self) -> str:
        return f"jsonb_build_object({', '.join(f'{_lit(n)}, t.{qi(n)}' for n, _ in self.key)})"


@dataclass(frozen=True)
class Checksum:
    rows: int
    checksum: str  # 16 hex digits


@dataclass(frozen=True)
class RowDifference:
    key: dict[str, Any]
    kind: Literal["only_live", "only_rebuilt", "changed"]
    columns: tuple[str, ...] = ()  # for "changed": the columns whose values differ


@dataclass(frozen=True)
class TableComparison:
    table: str
    live: Checksum
    rebuilt: Checksum
    only_live: int = 0
    only_rebuilt: int = 0
    changed: int = 0
    samples: tuple[RowDifference, ...] = ()

    @property
    def match(self) -> bool:
        return self.live == self.rebuilt


async def columns(conn: asyncpg.Connection, table: str, clocks: frozenset[str]) -> Columns:
    """``table`` is schema-qualified; its primary key is required (every projected table has one)."""
    rows = await conn.fetch(
        """
        select a.attname, format_type(a.atttypid, a.atttypmod) as type,
               exists (select 1 from pg_opclass o join pg_am m on m.oid = o.opcmethod
                       where m.amname = 'hash' and o.opcdefault and o.opcintype = a.atttypid) as hashable,
               a.attnum = any(coalesce((select conkey from pg_constraint
                                        where conrelid = a.attrelid and contype = 'p'), '{}')) as in_key,
               (select quote_ident(n.nspname) || '.' || quote_ident(p.proname) from pg_type y
                join pg_proc p on p.oid = y.typsend join pg_namespace n on n.oid = p.pronamespace
                where y.oid = a.atttypid) as send
        from pg_attribute a where a.attrelid = $1::regclass and a.attnum > 0 and not a.attisdropped
        order by a.attnum
        """, table,
    )  # fmt: skip
    compared = [r for r in rows if r["attname"] not in clocks]
    key = tuple((r["attname"], r["type"]) for r in rows if r["in_key"])
    if not key:
        raise ValueError(f"{table} has no primary key to compare rows by")
    hashed = tuple(_hashed(f"t.{qi(r['attname'])}", r["hashable"], r["send"]) for r in compared)
    return Columns(tuple(r["attname"] for r in compared), hashed, key)


def _hashed(column: str, hashable: bool, send: str | None) -> str:
    if hashable:
        return column
    return f"{send}({column})" if send else f"{column}::text"


async def checksum(conn: asyncpg.Connection, table: str, cols: Columns) -> Checksum:
    row = await conn.fetchrow(f"select count(*) as n, coalesce(sum({cols.row_hash()}::numeric), 0) as s from {table} t")
    total: Decimal = row["s"]
    return Checksum(row["n"], f"{int(total) % 2**64:016x}")


async def differences(
    conn: asyncpg.Connection, name: str, live: str, rebuilt: str, cols: Columns, sums: tuple[Checksum, Checksum],
) -> TableComparison:  # fmt: skip
    """Join both tables on the primary key; ``conn`` must see the rebuilt table's rows."""
    found = await conn.fetch(
        f"""
        with l as (select {cols.key_json()} as k, {cols.row_hash()} as h from {live} t),
             r as (select {cols.key_json()} as k, {cols.row_hash()} as h from {rebuilt} t)
        select case when l.k is null then 'only_rebuilt' when r.k is null then 'only_live' else 'changed' end as kind,
               count(*) as n, (array_agg(coalesce(l.k, r.k) order by coalesce(l.k, r.k)))[1:{SAMPLES}] as keys
        from l full join r on l.k = r.k where l.h is distinct from r.h group by 1
        """
    )  # fmt: skip
    counts = {r["kind"]: r["n"] for r in found}
    samples: list[RowDifference] = []
    for r in found:
        keys = [orjson.loads(k) for k in r["keys"]]
        if r["kind"] == "changed":
            before, after = await _rows(conn, live, cols, keys), await _rows(conn, rebuilt, cols, keys)
            for k in keys:
                changed = tuple(c for c in cols.compared if before[_ident(k)].get(c) != after[_ident(k)].get(c))
                samples.append(RowDifference(k, "changed", changed))
        else:
            samples.extend(RowDifference(k, r["kind"]) for k in keys)
    return TableComparison(name, sums[0], sums[1], counts.get("only_live", 0), counts.get("only_rebuilt", 0),
                           counts.get("changed", 0), tuple(samples))  # fmt: skip


async def _rows(conn: asyncpg.Connection, table: str, cols: Columns, keys: Sequence[dict[str, Any]]) -> dict[str, Any]:
    names = ", ".join(f"t.{qi(n)}" for n, _ in cols.key)
    spec = ", ".join(f"{qi(n)} {kind}" for n, kind in cols.key)
    found = await conn.fetch(
        f"select {cols.key_json()} as k, to_jsonb(t) as r from {table} t"
        f" where ({names}) in (select * from jsonb_to_recordset($1::jsonb) as x({spec}))", orjson.dumps(keys).decode(),
    )  # fmt: skip
    return {_ident(orjson.loads(r["k"])): orjson.loads(r["r"]) for r in found}


def _ident(key: dict[str, Any]) -> str:
    return orjson.dumps(key, option=orjson.OPT_SORT_KEYS).decode()


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
