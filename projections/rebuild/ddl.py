"""The shadow schema of a rebuild, and the statements that swap its tables in for the live ones.

Shadow tables live in a schema of their own (``msgmem_rebuild_<projection>``) under the live
tables' own names, rather than beside them as ``chats__rebuild``:

- index and constraint names are unique per schema, so every name (``chats_pkey``,
  ``chat_messages_chat_key_fkey``, ...) is the live one and stays so after the swap: nothing
  to rename, no clash, nothing for a later migration to trip over;
- the projection's SQL runs verbatim: the rebuild's connection puts the shadow schema first on
  its search_path, so the live projector's own statements write the shadow tables;
- Supabase's API only serves the schemas it is configured for, so no reader sees a half-built
  table, and a ``FOR TABLES IN SCHEMA public`` publication does not stream the rebuild.

How the shadow tables are made like the live ones is ``projections.rebuild.plan``. Objects
elsewhere that point at a live table by oid (views, foreign keys from other tables, functions
with SQL-standard bodies, policies of other tables) would follow the replaced table:
``dependents`` lists them and the rebuild refuses to start rather than drop them.
"""
from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from projections.rebuild.targets import RebuildError, RebuildTarget

SHADOW_COMMENT = "msgmem projections rebuild: tables of a rebuild in progress (or interrupted); dropped by the next one"


def qi(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Layout:
    live: str  # schema of the live tables, as the connection's search_path resolves them
    shadow: str
    tables: tuple[str, ...]
    rendered: dict[str, str]  # table -> its qualified name as Postgres prints it in definitions

    @property
    def old(self) -> str:
        """Where the swap moves the replaced tables, dropped right after it commits."""
        return self.shadow.replace("msgmem_rebuild_", "msgmem_replaced_", 1)

    def live_q(self, table: str) -> str:
        return f"{qi(self.live)}.{qi(table)}"

    def shadow_q(self, table: str) -> str:
        return f"{qi(self.shadow)}.{qi(table)}"


async def layout(conn: asyncpg.Connection, target: RebuildTarget) -> Layout:
    found = await conn.fetch(
        "select t.name, n.nspname, c.relkind::text, quote_ident(n.nspname) || '.' || quote_ident(c.relname) as q"
        " from unnest($1::text[]) as t(name)"
        " left join pg_class c on c.oid = to_regclass(quote_ident(t.name))"
        " left join pg_namespace n on n.oid = c.relnamespace", list(target.tables),
    )  # fmt: skip
    missing = [r["name"] for r in found if r["nspname"] is None or r["relkind"] != "r"]
    if missing:
        raise RebuildError(f"no table {', '.join(missing)} on the search_path: run `msgmem migrate` first")
    schemas = {r["nspname"] for r in found}
    if len(schemas) > 1:
        raise RebuildError(f"the tables of {target.name} are in several schemas ({', '.join(sorted(schemas))})")
    return Layout(schemas.pop(), f"msgmem_rebuild_{target.name}", target.tables, {r["name"]: r["q"] for r in found})


async def dependents(conn: asyncpg.Connection, lay: Layout) -> list[str]:
    """Objects outside the rebuilt tables that depend on them (and would be dropped with them)."""
    rows = await conn.fetch(
        """
        with live as (select oid from pg_class where relnamespace = $1::regnamespace and relname = any($2::text[])),
        deps as (
            select d.classid, d.objid, d.objsubid, case d.classid
                when 'pg_constraint'::regclass then (select conrelid from pg_constraint where oid = d.objid)
                when 'pg_trigger'::regclass then (select tgrelid from pg_trigger where oid = d.objid)
                when 'pg_policy'::regclass then (select polrelid from pg_policy where oid = d.objid)
                when 'pg_rewrite'::regclass then (select ev_class from pg_rewrite where oid = d.objid)
                when 'pg_attrdef'::regclass then (select adrelid from pg_attrdef where oid = d.objid)
                when 'pg_publication_rel'::regclass then (select prrelid from pg_publication_rel where oid = d.objid)
                when 'pg_class'::regclass then (select coalesce(i.indrelid, d.objid) from pg_class c
                                                left join pg_index i on i.indexrelid = c.oid where c.oid = d.objid)
                end as owner_rel
            from pg_depend d
            where d.refclassid = 'pg_class'::regclass and d.refobjid in (select oid from live) and d.deptype = 'n'
        )
        select distinct pg_describe_object(classid, objid, objsubid) as what from deps
        where owner_rel is null or owner_rel not in (select oid from live) order by 1
        """, qi(lay.live), list(lay.tables),
    )  # fmt: skip
    return [r["what"] for r in rows]


async def definition(conn: asyncpg.Connection, lay: Layout) -> list[str]:
    """The live tables' columns, constraints and indexes, to notice a migration during the rebuild."""
    return [r["d"] for r in await conn.fetch(
        """
        select c.relname || ' ' || x.d as d from pg_class c cross join lateral (
            select format('column %s %s %s %s', a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                          pg_get_expr(d.adbin, d.adrelid)) as d
            from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
            where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
            union all select format('constraint %s %s', conname, pg_get_constraintdef(oid)) from pg_constraint
            where conrelid = c.oid
            union all select format('index %s', pg_get_indexdef(indexrelid)) from pg_index where indrelid = c.oid
        ) x where c.relnamespace = $1::regnamespace and c.relname = any($2::text[]) order by 1
        """, qi(lay.live), list(lay.tables),
    )]  # fmt: skip


def swap_statements(lay: Layout) -> list[str]:
    """Move the live tables out of their schema and the shadow ones in, names unchanged.

    Catalog changes only: the replaced tables are dropped after the commit (``drop_replaced``),
    so deleting their files does not lengthen the time readers wait. Extended statistics
    objects stay in the schema they were created in, so they are moved with their tables.
    """
    live_oids = ", ".join(f"{literal(lay.live_q(t))}::regclass" for t in lay.tables)
    return [
        f"create schema {qi(lay.old)}",
        f"comment on schema {qi(lay.old)} is {literal(SHADOW_COMMENT)}",
        f"""do $$ declare s record; begin
            for s in select stxname from pg_statistic_ext where stxrelid in ({live_oids}) loop
                execute format('alter statistics %I.%I set schema %I', {literal(lay.live)}, s.stxname,
                               {literal(lay.old)});
            end loop; end $$""",
        *(f"alter table {lay.live_q(t)} set schema {qi(lay.old)}" for t in lay.tables),
        *(f"alter table {lay.shadow_q(t)} set schema {qi(lay.live)}" for t in lay.tables),
        f"""do $$ declare s record; begin
            for s in select stxname from pg_statistic_ext
                     where stxnamespace = {literal(qi(lay.shadow))}::regnamespace loop
                execute format('alter statistics %I.%I set schema %I', {literal(lay.shadow)}, s.stxname,
                               {literal(lay.live)});
            end loop; end $$""",
        f"drop schema {qi(lay.shadow)}",
    ]


async def drop_replaced(conn: asyncpg.Connection, lay: Layout) -> str | None:
    """Drop the replaced tables; a warning instead when a transaction still holds them (one
    that read them before the swap) for longer than half a minute."""
    try:
        async with conn.transaction():
            await conn.execute("set local lock_timeout = '30s'")
            await conn.execute(f"drop schema if exists {qi(lay.old)} cascade")
    except asyncpg.LockNotAvailableError:
        return (f"the replaced tables are still in use: they stay in schema {lay.old} until the next rebuild"
                f" (or `drop schema {lay.old} cascade`)")
    return None


async def create_shadow_schema(conn: asyncpg.Connection, lay: Layout) -> None:
    """A fresh, empty shadow schema; leftovers of an interrupted rebuild are dropped first.
    Refuses to drop a schema of those names that a rebuild did not create."""
    for schema in (lay.shadow, lay.old):
        found = await conn.fetchrow("select obj_description(oid, 'pg_namespace') as comment from pg_namespace"
                                    " where nspname = $1", schema)  # fmt: skip
        if found is not None and found["comment"] != SHADOW_COMMENT:
            raise RebuildError(f"schema {schema} exists and was not made by a rebuild: drop or rename it")
        await conn.execute(f"drop schema if exists {qi(schema)} cascade")
    await conn.execute(f"create schema {qi(lay.shadow)}")
    await conn.execute(f"comment on schema {qi(lay.shadow)} is {literal(SHADOW_COMMENT)}")


async def drop_shadow_schema(conn: asyncpg.Connection, lay: Layout) -> None:
    await conn.execute(f"drop schema if exists {qi(lay.shadow)} cascade")


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
