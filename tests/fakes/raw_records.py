"""An in-memory wa.raw for the media stage's inline media: records by (topic, partition, offset)."""

from __future__ import annotations

from contracts.messages import RecordRef
from streams.common.records import InputRecord


class FakeRawRecords:
    def __init__(self, *records: InputRecord) -> None:
        self.records: dict[tuple[str, int, int], bytes] = {}
        self.reads: list[RecordRef] = []
        for record in records:
            self.add(record)

    def add(self, record: InputRecord) -> None:
        self.records[(record.topic, record.partition, record.offset)] = record.value

    async def read(self, where: RecordRef) -> bytes | None:
        self.reads.append(where)
        return self.records.get((where.topic, where.partition, where.offset))

    async def aclose(self) -> None:
        return None
