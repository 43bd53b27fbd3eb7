"""The stage guard: an input the erasure ledger hides never reaches the handler (no download, no
model call); an output about an erased chat (normalize learns chats by parsing) is dropped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from contracts.erasure import Ledger, subject_hash
from streams.common.erasure_guard import guard
from streams.common.records import InputRecord, Output

CHAT = "whapi:100:15550001111@s.whatsapp.net"
ERASED_AT = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)


class FixedLedger:
    async def current(self) -> Ledger:
        return Ledger.of([(subject_hash("phone", "15550001111"), [], ERASED_AT)])


def value(minute: int) -> bytes:
    return orjson.dumps({"chat_key": CHAT, "received_at": datetime(2026, 12, 1, 12, minute, tzinfo=UTC).isoformat()})


async def test_an_erased_input_is_skipped_before_the_handler_and_a_later_one_runs() -> None:
    seen: list[int] = []

    async def handler(record: InputRecord) -> list[Output]:
        seen.append(record.offset)
        return [Output("wa.transcripts", CHAT.encode(), record.value)]

    guarded = guard(handler, FixedLedger())  # type: ignore[arg-type]
    assert await guarded(InputRecord("wa.media", 0, 1, CHAT.encode(), value(10))) == []
    assert len(await guarded(InputRecord("wa.media", 0, 2, CHAT.encode(), value(40)))) == 1
    assert seen == [2]


async def test_outputs_about_an_erased_chat_are_dropped() -> None:
    async def parse(_record: InputRecord) -> list[Any]:
        return [Output("wa.messages", CHAT.encode(), value(10)), Output("wa.messages", b"whapi:100:1555", value(10))]

    outputs = await guard(parse, FixedLedger())(InputRecord("wa.raw", 0, 1, b"whapi:100", b"{}"))  # type: ignore[arg-type]
    assert [o.key for o in outputs] == [b"whapi:100:1555"]
