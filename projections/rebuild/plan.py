"""How the shadow tables are made like the live ones, read from the live tables' catalog.

``LIKE ... INCLUDING ALL EXCLUDING INDEXES`` copies columns, defaults, check and not-null
constraints, storage and comments. What it does not copy, or copies under other names, is
added each at the moment it costs least:

- before the load (``create``), primary key, unique and exclusion constraints (and unique
  indexes) under their live names: they decide what Postgres refuses, and the rebuild must
  refuse the same events the live projector refused;
- after the load (``after_load``), plain indexes and foreign keys, built once instead of
  maintained per row (the foreign keys cannot fail: every batch writes its chats first), then
  RLS (enabled and forced flags), policies, storage parameters, replica identity and the table
  comment; grants and owner by ``copy_grants``;
- inside the swap transaction (``at_swap``), triggers and publication membership, so nothing
  fires or is published for the rebuild's own rows.

Definitions are deparsed with only the live schema on the search_path: names of the rebuilt
tables come out unqualified and resolve to the shadow tables on the rebuild's connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from projections.rebuild.ddl import Layout, literal, qi
from projections.rebuild.targets import RebuildError


@dataclass
class ShadowPlan:
    create: list[str] = field(default_factory=list)
    after_load: list[str] = field(default_factory=list)
    at_swap: list[str] = field(default_factory=list)
    owners: dict[str, str] = field(default_factory=dict)  # table -> live owner


async def plan(conn: asyncpg.Connection, lay: Layout) -> ShadowPlan:
    """Read the live tables' definitions and turn them into statements on the shadow tables."""
    out = ShadowPlan()
    async with conn.transaction():
        await conn.execute("select set_config('search_path', $1, true)", qi(lay.live))
        for table in lay.tables:
            await _plan_table(conn, lay, table, out)
    return out


async def _plan_table(conn: asyncpg.Connection, lay: Layout, table: str, out: ShadowPlan) -> None:
    live, shadow, printed = lay.live_q(table), lay.shadow_q(table), lay.rendered[table]
    rel = await conn.fetchrow(
        "select c.oid, pg_get_userbyid(c.relowner) as owner, c.relrowsecurity, c.relforcerowsecurity, c.reloptions,"
        " c.relreplident::text, obj_description(c.oid, 'pg_class') as comment from pg_class c"
        " where c.oid = $1::regclass",
        live,
    )  # fmt: skip
    out.create.append(f"create table {shadow} (like {live} including all excluding indexes)")
    for con in await conn.fetch("select conname, contype::text, pg_get_constraintdef(oid) as def from pg_constraint"
                                " where conrelid = $1 and contype in ('p', 'u', 'x', 'f') order by contype, conname",
                                rel["oid"]):  # fmt: skip
        statement = f"alter table {shadow} add constraint {qi(con['conname'])} {con['def']}"
        (out.after_load if con["contype"] == "f" else out.create).append(statement)
    for index in await conn.fetch("select i.indisunique, c.relname, pg_get_indexdef(i.indexrelid) as def"
                                  " from pg_index i join pg_class c on c.oid = i.indexrelid where i.indrelid = $1"
                                  " and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid"
                                  " and k.conrelid = i.indrelid) order by c.relname", rel["oid"]):  # fmt: skip
        statement = _retarget(index["def"], f" ON {printed} USING ", f" ON {shadow} USING ")
        (out.create if index["indisunique"] else out.after_load).append(statement)
    if rel["relrowsecurity"]:
        out.after_load.append(f"alter table {shadow} enable row level security")
    if rel["relforcerowsecurity"]:
        out.after_load.append(f"alter table {shadow} force row level security")
    for policy in await conn.fetch(
        "select policyname, permissive, cmd, qual, with_check, array(select case when r = 'public' then 'public'"
        " else quote_ident(r) end from unnest(roles) r) as roles from pg_policies"
        " where schemaname = $1 and tablename = $2 order by policyname", lay.live, table,
    ):  # fmt: skip
        using = f" using ({policy['qual']})" if policy["qual"] else ""
        check = f" with check ({policy['with_check']})" if policy["with_check"] else ""
        out.after_load.append(f"create policy {qi(policy['policyname'])} on {shadow} as {policy['permissive']}"
                              f" for {policy['cmd']} to {', '.join(policy['roles'])}{using}{check}")  # fmt: skip
    if rel["reloptions"]:
        out.after_load.append(f"alter table {shadow} set ({', '.join(rel['reloptions'])})")
    identity = await _replica_identity(conn, rel["oid"], rel["relreplident"])
    if identity:
        out.after_load.append(f"alter table {shadow} replica identity {identity}")
    if rel["comment"] is not None:
        out.after_load.append(f"comment on table {shadow} is {literal(rel['comment'])}")
    out.owners[table] = rel["owner"]
    for trigger in await conn.fetch(
        "select pg_get_triggerdef(oid) as def, tgenabled::text, tgname from pg_trigger"
        " where tgrelid = $1 and not tgisinternal order by tgname", rel["oid"],
    ):  # fmt: skip
        out.at_swap.append(_retarget(trigger["def"], f" ON {printed} ", f" ON {shadow} "))
        if trigger["tgenabled"] == "D":
            out.at_swap.append(f"alter table {shadow} disable trigger {qi(trigger['tgname'])}")
    for pub in await conn.fetch(
        "select p.pubname::text, pg_get_expr(r.prqual, r.prrelid) as qual, array(select quote_ident(a.attname)"
        " from pg_attribute a where a.attrelid = r.prrelid and a.attnum = any(r.prattrs) order by a.attnum) as cols"
        " from pg_publication_rel r join pg_publication p on p.oid = r.prpubid where r.prrelid = $1", rel["oid"],
    ):  # fmt: skip
        cols = f" ({', '.join(pub['cols'])})" if pub["cols"] else ""
        where = f" where ({pub['qual']})" if pub["qual"] else ""
        out.at_swap.append(f"alter publication {qi(pub['pubname'])} add table {shadow}{cols}{where}")


async def _replica_identity(conn: asyncpg.Connection, oid: int, kind: str) -> str | None:
    if kind == "f":
        return "full"
    if kind == "n":
        return "nothing"
    if kind == "i":
        name = await conn.fetchval("select c.relname from pg_index i join pg_class c on c.oid = i.indexrelid"
                                   " where i.indrelid = $1 and i.indisreplident", oid)  # fmt: skip
        return f"using index {qi(name)}" if name else None
    return None


async def copy_grants(conn: asyncpg.Connection, lay: Layout, owners: dict[str, str]) -> None:
    """Privileges exactly as on the live tables: default privileges the creating role may have
    added to the shadow tables are revoked first. Column privileges are not copied."""
    for table in lay.tables:
        shadow, live = lay.shadow_q(table), lay.live_q(table)
        for grantee in await conn.fetch(_ACL_GRANTEES, shadow):
            await conn.execute(f"revoke all on {shadow} from {grantee['role']}")
        for grant in await conn.fetch(_ACL, live):
            option = " with grant option" if grant["grantable"] else ""
            await conn.execute(f"grant {grant['privilege']} on {shadow} to {grant['role']}{option}")
        if owners[table] != await conn.fetchval("select current_user"):
            try:
                await conn.execute(f"alter table {shadow} owner to {qi(owners[table])}")
            except asyncpg.InsufficientPrivilegeError as exc:
                raise RebuildError(f"{table} is owned by {owners[table]}: rebuild as that role ({exc})") from exc


_ROLE = "case when a.grantee = 0 then 'public' else quote_ident(pg_get_userbyid(a.grantee)) end"
_ACL = f"""
select {_ROLE} as role, a.privilege_type as privilege, a.is_grantable as grantable
from pg_class c, aclexplode(c.relacl) a where c.oid = $1::regclass and a.grantee <> c.relowner
"""
_ACL_GRANTEES = f"select distinct {_ROLE} as role from pg_class c, aclexplode(c.relacl) a" \
                " where c.oid = $1::regclass and a.grantee <> c.relowner"  # fmt: skip


def _retarget(definition: str, live: str, shadow: str) -> str:
    if live not in definition:
        raise RebuildError(f"cannot place on the shadow table: {definition}")
    return definition.replace(live, shadow, 1)
