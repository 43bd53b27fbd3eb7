"""What the fault suite posts, and what it must find afterwards: pure, no I/O.

N distinct Whapi text messages, one per delivery, spread over a few channels (wa.raw is
keyed by provider and channel, so channels are partitions) and many chats, with a share of
them delivered a second time later, as providers redeliver. Every message's id and text
are known in advance, so the tables can be reconciled against them exactly.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True)
class Delivery:
    seq: int  #: position in the posting schedule
    message: int  #: which message it carries (a redelivery repeats an earlier one)
    channel: str
    body: bytes


@dataclass(frozen=True)
class Workload:
    run: str
    messages: int
    redelivery_share: float = 0.02
    channels: int = 8
    chats: int = 200
    body_bytes: int = 300
    seed: int = 12

    def message_id(self, i: int) -> str:
        return f"chaos-{self.run}-{i:06d}"

    def channel(self, i: int) -> str:
        return f"CHAOS-{self.run}-{i % self.channels}"

    def text(self, i: int) -> str:
        head = f"chaos message {i} of run {self.run} about order {i % 9973}: "
        filler = hashlib.sha256(f"{self.run}:{i}".encode()).hexdigest()
        return (head + filler * (1 + self.body_bytes // len(filler)))[: max(self.body_bytes, len(head))]

    def body(self, i: int) -> bytes:
        chat = (i * 7919) % self.chats
        message = {
            "id": self.message_id(i), "from_me": False, "type": "text",
            "chat_id": f"1555{chat:07d}@s.whatsapp.net", "timestamp": 1_795_166_100 + i, "source": "mobile",
            "text": {"body": self.text(i)}, "from": f"1555{chat:07d}", "from_name": f"Chaos {chat}",
        }  # fmt: skip
        return orjson.dumps(
            {"messages": [message], "event": {"type": "messages", "event": "post"}, "channel_id": self.channel(i)}
        )

    def deliveries(self) -> list[Delivery]:
        """The posting schedule: every message once, and about ``redelivery_share`` of them
        again 20 to 200 positions later (or at the end)."""
        rng = random.Random(self.seed)
        schedule: list[tuple[float, int]] = [(float(i), i) for i in range(self.messages)]
        for i in range(self.messages):
            if rng.random() < self.redelivery_share:
                schedule.append((i + rng.randint(20, 200) + 0.5, i))
        schedule.sort()
        return [Delivery(seq, i, self.channel(i), self.body(i)) for seq, (_, i) in enumerate(schedule)]

    def expected(self, ids: set[str] | None = None) -> dict[str, str]:
        """Message id -> text, of every message (or only of ``ids``)."""
        everything = {self.message_id(i): self.text(i) for i in range(self.messages)}
        return everything if ids is None else {k: v for k, v in everything.items() if k in ids}


def checksum(rows: dict[str, str]) -> str:
    """md5 of ``id|text`` lines in id order: the same figure Postgres computes over the rows
    (``CHECKSUM_SQL``), so lost, extra or altered rows all change it."""
    joined = ",".join(f"{mid}|{text}" for mid, text in sorted(rows.items()))
    return hashlib.md5(joined.encode()).hexdigest()  # noqa: S324 - a checksum, not a secret


CHECKSUM_SQL = """
select count(*) as n, count(distinct provider_message_id) as distinct_ids,
       md5(coalesce(string_agg(provider_message_id || '|' || coalesce(body, ''), ','
           order by provider_message_id collate "C"), '')) as checksum
from chat_messages where provider_message_id like $1
"""
