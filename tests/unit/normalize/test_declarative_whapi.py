"""Whapi re-expressed as a mapping file (examples/providers/whapi.yaml) gives the built-in
whapi normaliser's events on every Whapi fixture, field by field.

Allowed to differ: the provider name and what is derived from it (``provider``, ``chat_key``,
``event_id``, ``message_id``, ``target_message_id``). Those follow the one id scheme: with
the built-in normaliser run under the mapping's name, they are equal too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contracts.messages import MessageEvent
from contracts.provider_mapping import load_mapping
from contracts.raw import RawDelivery
from streams.normalize.providers import whapi
from streams.normalize.providers.declarative import DeclarativeNormaliser
from tests.unit.normalize.webhooks import RECEIVED_AT, WEBHOOKS

ROOT = Path(__file__).resolve().parents[3]
MAPPING = ROOT / "examples" / "providers" / "whapi.yaml"
NAME = "whapi-declarative"
DERIVED = {"provider", "chat_key", "event_id", "message_id", "target_message_id"}
FIXTURES = sorted((WEBHOOKS / "whapi").glob("*.json")) + sorted((WEBHOOKS / "whapi" / "kinds").glob("*.json"))


def raw(provider: str, path: Path) -> RawDelivery:
    return RawDelivery(
        delivery_id=f"dlv-{path.stem}", provider=provider, channel="TESTCH-A1B2C", received_at=RECEIVED_AT,
        headers={"content-type": "application/json"}, body=path.read_bytes(),
    )  # fmt: skip


def fields(event: MessageEvent, leave_out: set[str] = DERIVED) -> dict[str, Any]:
    return {k: v for k, v in event.model_dump(mode="json").items() if k not in leave_out}


def declarative(path: Path) -> list[MessageEvent]:
    found = DeclarativeNormaliser(load_mapping(MAPPING))(raw(NAME, path))
    assert found.failures == []
    return found.events


def differences(ours: list[MessageEvent], theirs: list[MessageEvent], leave_out: set[str]) -> list[str]:
    """``event[i].field`` for each field that differs (a missing event: ``event[i]``)."""
    diffs = [f"event[{i}]" for i in range(min(len(ours), len(theirs)), max(len(ours), len(theirs)))]
    for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        fa, fb = fields(a, leave_out), fields(b, leave_out)
        diffs += [f"event[{i}].{k}" for k in sorted(fa.keys() | fb.keys()) if fa.get(k) != fb.get(k)]
    return diffs


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_mapping_gives_the_built_in_events_field_by_field(path: Path) -> None:
    builtin = whapi.normalise(raw("whapi", path))
    assert builtin.failures == []
    ours = declarative(path)
    assert differences(ours, builtin.events, DERIVED) == []
    assert {e.provider for e in ours} == {NAME}


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_ids_follow_the_built_in_scheme(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under one provider name both give the same ids: name + channel + provider message id."""
    monkeypatch.setattr(whapi, "PROVIDER", NAME)
    builtin = whapi.normalise(raw(NAME, path)).events
    assert differences(declarative(path), builtin, set()) == []


def test_every_fixture_is_compared() -> None:
    assert len(FIXTURES) >= 29  # 15 cases and 14 kinds
