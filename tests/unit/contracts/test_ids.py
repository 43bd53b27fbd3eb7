"""Deterministic ids and the value parsers the normalisers share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from contracts.ids import Jid, chat_key, event_id, message_id, normalise_jid, phone_digits, sha256_hex, to_utc


def test_chat_key_is_provider_channel_chat() -> None:
    assert chat_key("whapi", "TESTCH-A1B2C", "15550001234") == "whapi:TESTCH-A1B2C:15550001234"


def test_ids_are_pinned_forever() -> None:
    # Changing these re-keys every projected row: the scheme must never change.
    whapi_text = ("whapi", "TESTCH-A1B2C", "Wq7.tXa1Bc2De3Fg4Hi5J-gBgTk0aA")
    meta_echo = ("meta", "100000000000001", "wamid.GAtzLWVjaG8tREM3NjVBRDZGOUNEMTFCNTE4RTE=")
    assert message_id(*whapi_text) == "b75c7f03-8e39-5568-9e9a-4cc848965366"
    assert event_id(*whapi_text, "message_received") == "5f6b5954-26c0-536f-8507-5fea36f8b1f9"
    assert event_id(*meta_echo, "status_updated", "read") == "e3151769-f852-5e09-a93f-e7657d6c2787"


def test_event_ids_separate_what_differs() -> None:
    base = ("whapi", "CH", "m1")
    ids = {
        event_id(*base, "message_received"),
        event_id(*base, "message_sent"),
        event_id(*base, "status_updated", "read"),
        event_id(*base, "status_updated", "delivered"),
        event_id("whapi", "CH2", "m1", "message_received"),
        event_id("evolution", "CH", "m1", "message_received"),
        message_id(*base),
    }
    assert len(ids) == 7
    # Parts are joined with a separator no id contains, so shifting text between parts differs.
    assert event_id("p", "ab", "c", "t") != event_id("p", "a", "bc", "t")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("15550001234@s.whatsapp.net", Jid("15550001234", "15550001234", False, False)),
        ("15550001234@c.us", Jid("15550001234", "15550001234", False, False)),
        ("15550001234:12@s.whatsapp.net", Jid("15550001234", "15550001234", False, False)),
        ("15550001234", Jid("15550001234", "15550001234", False, False)),
        ("+15550001234", Jid("15550001234", "15550001234", False, False)),
        ("120363000000000001@g.us", Jid("120363000000000001@g.us", None, True, False)),
        ("203040506070809@lid", Jid("203040506070809@lid", None, False, True)),
        ("status@broadcast", Jid("status@broadcast", None, False, False)),
        ("Y3VzdG9tZXItZ3JvdXAtMDAwMQ", Jid("Y3VzdG9tZXItZ3JvdXAtMDAwMQ", None, False, False)),
    ],
)
def test_normalise_jid(raw: str, expected: Jid) -> None:
    assert normalise_jid(raw) == expected


def test_normalise_jid_refuses_empty() -> None:
    with pytest.raises(ValueError):
        normalise_jid("  ")


def test_phone_digits() -> None:
    assert phone_digits("+1 555-000-7777") == "15550007777"
    assert phone_digits("") is None
    assert phone_digits(None) is None


T0 = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        1795166100,
        "1795166100",
        1795166100.0,
        1795166100000,
        "1795166100000",
        "2026-11-20T09:15:00.000Z",
        "2026-11-20T10:15:00+01:00",
        datetime(2026, 11, 20, 10, 15, tzinfo=timezone(timedelta(hours=1))),
    ],
)
def test_to_utc(value: object) -> None:
    result = to_utc(value)  # type: ignore[arg-type]
    assert result == T0
    assert result.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", ["soon", True, datetime(2026, 11, 20), None])
def test_to_utc_refuses(value: object) -> None:
    with pytest.raises(ValueError):
        to_utc(value)  # type: ignore[arg-type]


VOICE = "464110b337c34eb4afa3b3399046138902422ee61ba4eacd5778fb47f96563de"
PHOTO = "fadbe700fe740831f573d7c62ef0e13b79bf00a14f92741d46357b7d99c0131f"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("RkEQszfDTrSvo7M5kEYTiQJCLuYbpOrNV3j7R/llY94=", VOICE),
        ("+tvnAP50CDH1c9fGLvDhO3m/AKFPknQdRjV7fZnAEx8=", PHOTO),
        ("-tvnAP50CDH1c9fGLvDhO3m_AKFPknQdRjV7fZnAEx8", PHOTO),  # url-safe, unpadded
        (PHOTO.upper(), PHOTO),
        ("not base64!", None),
        ("AAAA", None),  # valid base64, but not 32 bytes
        ("", None),
        (None, None),
    ],
)
def test_sha256_hex(value: str | None, expected: str | None) -> None:
    assert sha256_hex(value) == expected
