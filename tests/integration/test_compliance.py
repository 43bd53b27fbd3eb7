"""Consent and the 24-hour window where people look: the messages projector flags an outbound
message sent while its chat was opted out, or in a 1:1 chat outside the customer service window
without a template; a late inbound message judges the sends after it again; each chat shows when
its window closes; the flags are counted in the projector's metrics and `msgmem compliance`
lists them. Real broker, real Postgres, the real projector and CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import asyncpg
import pytest

from contracts.settings import Settings
from tests.integration.test_projector import caught_up, channel, message, produce, projector, rows, start_at_end
from tests.unit.projections.factory import Chat, at

pytestmark = pytest.mark.integration

HOUR, DAY = 3600, 86400


async def flags(db: asyncpg.Connection, chat: Chat) -> dict[str, str | None]:
    found = await db.fetch("select provider_message_id, compliance_flag from chat_messages"
                           " where chat_key = $1 and direction = 'outbound'", chat.key)  # fmt: skip
    return {r["provider_message_id"]: r["compliance_flag"] for r in found}


async def test_outbound_messages_are_judged_by_consent_and_window(settings: Settings, db: asyncpg.Connection) -> None:
    await start_at_end(db, settings)
    dana, group = Chat(channel=channel()), Chat(channel=channel(), chat_id="120363000000001@g.us", is_group=True,
                                                group_name="Team", contact_name=None)  # fmt: skip
    async with projector(settings) as running:
        await produce(settings, [
            dana.received("in-1", "hi", t=0),
            dana.sent("out-inside", "hello back", t=HOUR),
            dana.sent("out-late", "still there?", t=2 * DAY),
            dana.sent("out-template", None, t=2 * DAY + 60, template="order_update"),
            dana.received("in-stop", "STOP", t=3 * DAY), dana.consent("in-stop", "opted_out", t=3 * DAY),
            dana.sent("out-after-stop", "bye", t=3 * DAY + 60),
            group.sent("g-out", "news", t=2 * DAY),
        ])  # fmt: skip
        await caught_up(db, settings)
        assert await flags(db, dana) == {
            "out-inside": None, "out-late": "outside_window", "out-template": None, "out-after-stop": "opted_out",
        }
        assert await flags(db, group) == {"g-out": None}  # groups have no customer service window
        [chat] = await rows(db, "chats", [dana.key])
        assert chat["service_window_closes_at"] == at(3 * DAY) + timedelta(hours=24)
        assert (await message(db, dana.mid("out-template")))["template"] == "order_update"

        # A message the contact sent an hour before "out-late" arrives late: that send was inside
        # the window after all. Then they opt back in: later sends are no longer opted out.
        await produce(settings, [
            dana.received("in-late", "are you open?", t=2 * DAY - HOUR),
            dana.received("in-start", "START", t=4 * DAY), dana.consent("in-start", "opted_in", t=4 * DAY),
            dana.sent("out-welcome-back", "welcome back", t=4 * DAY + 60),
        ])  # fmt: skip
        await caught_up(db, settings)
        assert await flags(db, dana) == {
            "out-inside": None, "out-late": None, "out-template": None, "out-after-stop": "opted_out",
            "out-welcome-back": None,
        }
        sample = running.metrics.registry.get_sample_value
        labels = {"projection": "chat_messages"}
        assert sample("msgmem_projector_rows_flagged_total", labels | {"reason": "outside_window"}) == 1
        assert sample("msgmem_projector_rows_flagged_total", labels | {"reason": "opted_out"}) == 1

    assert await db.fetchval("select count(*) from chat_consent_changes where chat_key = $1", dana.key) == 2

    env = {**os.environ, "DATABASE_URL": settings.database_url}
    listed = subprocess.run(
        [sys.executable, "-m", "msgmem.cli", "compliance", "--json", "--since", at(0).isoformat(),
         "--until", at(10 * DAY).isoformat()], env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    messages = [m for m in json.loads(listed.stdout)["messages"] if m["chat_key"] == dana.key]
    assert [(m["message_id"], m["reason"], m["consent_state"]) for m in messages] == [
        (dana.mid("out-after-stop"), "opted_out", "opted_in"),
    ]
