"""A caller who controls its own search_path (a schema of its own placed first, holding a
table or an operator named like ours) cannot redirect the SQL functions of the migrations:
every function of the public schema pins its search_path."""

from __future__ import annotations

import asyncpg
import pytest

from contracts.settings import Settings

pytestmark = pytest.mark.integration

UNPINNED = """
select p.oid::regprocedure::text as function
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
where n.nspname = 'public'
  and not exists (  -- an extension's own functions (pgvector's) are the extension's business
      select 1 from pg_depend d
      where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e'
  )
  and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) c where c like 'search_path=%')
order by 1
"""


async def test_every_public_function_pins_its_search_path(settings: Settings) -> None:
    conn = await asyncpg.connect(settings.database_url)
    try:
        assert await conn.fetch(UNPINNED) == []
        pinned = await conn.fetchval(
            "select count(*) from pg_proc where proname in ('match_session_messages', 'match_session_words', 'match_session_texts')"
        )
        assert pinned == 3
    finally:
        await conn.close()


async def test_a_hostile_search_path_does_not_redirect_recall(settings: Settings) -> None:
    """A session whose search_path starts with a schema of its own, holding tables named like
    ours with a planted chunk: recall by words still reads the real tables only."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute("""
            drop schema if exists decoy cascade;
            create schema decoy;
            create table decoy.message_embeddings (message_id text, chunk_index integer, chat_key text, chunk_tsv tsvector);
            create table decoy.chat_messages (id text, deleted_at timestamptz);
            insert into decoy.message_embeddings values ('planted', 0, 'decoy-chat', to_tsvector('simple', 'order 4271'));
        """)  # fmt: skip
        await conn.execute("set search_path = decoy, public")
        rows = await conn.fetch("select * from public.match_session_words('decoy-chat', 'order 4271', 5, 100)")
        assert rows == []  # unpinned, the function would have found 'planted' in decoy.message_embeddings
    finally:
        await conn.execute("reset search_path; drop schema if exists decoy cascade")
        await conn.close()
