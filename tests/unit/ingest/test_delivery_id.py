"""Delivery ids: formatted by hand for speed, so checked against the uuid module."""

from __future__ import annotations

import uuid

from ingest.service import new_delivery_id


def test_delivery_ids_are_distinct_version_4_uuids() -> None:
    ids = [new_delivery_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:500]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
