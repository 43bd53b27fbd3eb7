"""Deliveries whose envelope cannot be read raise UnparseableDelivery (-> dead letter), never
a bare error; a malformed item of a readable one fails alone (see test_isolation)."""

from __future__ import annotations

import orjson
import pytest

from streams.normalize.errors import NormaliseError, UnparseableDelivery
from streams.normalize.logic import normalise, normalise_parts
from streams.normalize.providers import NORMALISERS
from tests.unit.normalize.webhooks import delivery, fixture_bytes


@pytest.mark.parametrize("provider", ["whapi", "meta", "evolution", "outbound"])
@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"<xml/>", b'{"truncated": ', b"42", b'"text"', b"null", b"{}", b'{"hello": "world"}'],
)
def test_unrecognised_bodies(provider: str, body: bytes) -> None:
    with pytest.raises(UnparseableDelivery):
        normalise_parts(delivery(provider, body=body))


def test_unknown_provider() -> None:
    with pytest.raises(UnparseableDelivery, match="no normaliser for provider 'telegram'"):
        normalise(delivery("telegram", body=b"{}"))


def test_registry() -> None:
    assert set(NORMALISERS) == {"whapi", "meta", "meta_cloud", "evolution", "outbound"}


def _broken(provider: str, case: str, mutate) -> bytes:  # type: ignore[no-untyped-def]
    body = orjson.loads(fixture_bytes(provider, case))
    mutate(body)
    return orjson.dumps(body)


@pytest.mark.parametrize(
    ("provider", "case", "mutate"),
    [
        ("whapi", "text", lambda b: b.pop("channel_id")),
        ("meta", "text", lambda b: b.update(entry="nope")),
        ("evolution", "text", lambda b: b.pop("instance")),
        ("evolution", "text", lambda b: b.update(date_time="yesterday")),
    ],
)
def test_a_malformed_envelope_fails_the_whole_delivery(provider: str, case: str, mutate) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnparseableDelivery):
        normalise_parts(delivery(provider, body=_broken(provider, case, mutate)))


@pytest.mark.parametrize(
    ("provider", "case", "mutate", "path"),
    [
        ("whapi", "text", lambda b: b["messages"][0].pop("id"), "messages[0]"),
        ("whapi", "text", lambda b: b["messages"][0].update(timestamp="yesterday"), "messages[0]"),
        ("whapi", "text", lambda b: b.update(messages={"not": "a list"}), "messages"),
        ("whapi", "status_update", lambda b: b["statuses"][0].pop("recipient_id"), "statuses[0]"),
        ("meta", "text", lambda b: b["entry"][0]["changes"][0]["value"]["messages"][0].pop("id"),
         "entry[0].changes[0].value.messages[0]"),
        ("meta", "text", lambda b: b["entry"][0]["changes"][0]["value"].pop("metadata"), "entry[0].changes[0]"),
        ("evolution", "text", lambda b: b["data"].pop("key"), "data"),
    ],
)
def test_a_malformed_item_fails_alone(provider: str, case: str, mutate, path: str) -> None:  # type: ignore[no-untyped-def]
    """Its neighbours (none here) still become events; the all-or-nothing ``normalise`` refuses it."""
    body = _broken(provider, case, mutate)
    assert [f.path for f in normalise_parts(delivery(provider, body=body)).failures] == [path]
    with pytest.raises(UnparseableDelivery):
        normalise(delivery(provider, body=body))


def test_unparseable_is_a_normalise_error() -> None:
    assert issubclass(UnparseableDelivery, NormaliseError)
