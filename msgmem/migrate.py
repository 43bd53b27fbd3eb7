"""Apply ``migrations/*.sql`` in order, once each, recording what was applied.

The same files run against the embedded Postgres and a Supabase project. Each file runs in
its own transaction under an advisory lock, so concurrent migrators (several containers
starting together) apply each file exactly once. An applied file whose text changed is an
error: migrations are append-only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

_LOCK_KEY = 0x6D73676D656D  # "msgmem"

_LEDGER = """
create table if not exists schema_migrations (
    version text primary key,
    checksum text not null,
    applied_at timestamptz not null default now()
);
alter table schema_migrations enable row level security;
"""


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """Migrations sorted by file name (``0001_initial.sql`` …); the version is the file stem."""
    if directory is None:
        files = [f for f in resources.files("migrations").iterdir() if f.name.endswith(".sql")]
        return sorted((Migration(f.name.removesuffix(".sql"), f.read_text()) for f in files), key=lambda m: m.version)
    return [Migration(p.stem, p.read_text()) for p in sorted(directory.glob("*.sql"))]


async def apply_migrations(conn: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
    """Apply what is not yet applied; return the versions applied now."""
    await conn.execute("select pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(_LEDGER)
        applied = {r["version"]: r["checksum"] for r in await conn.fetch("select version, checksum from schema_migrations")}
        done: list[str] = []
        for m in migrations:
            if m.version in applied:
                if applied[m.version] != m.checksum:
                    raise MigrationError(f"migration {m.version} was changed after it was applied; add a new one instead")
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "insert into schema_migrations (version, checksum) values ($1, $2)", m.version, m.checksum
                )
            done.append(m.version)
        return done
    finally:
        await conn.execute("select pg_advisory_unlock($1)", _LOCK_KEY)


async def migrate(database_url: str, *, statement_cache_size: int = 100, directory: Path | None = None) -> list[str]:
    conn = await asyncpg.connect(database_url, statement_cache_size=statement_cache_size)
    try:
        return await apply_migrations(conn, load_migrations(directory))
    finally:
        await conn.close()
