"""Opt-out / opt-in keywords: whole-message, case- and whitespace-insensitive."""

from __future__ import annotations

import orjson
import pytest

from contracts.messages import ConsentChanged, MessageReceived
from streams.normalize.consent import consent_change
from streams.normalize.logic import NormaliseConfig, normalise
from tests.unit.normalize.webhooks import delivery, fixture_bytes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", "opted_out"),
        ("stop", "opted_out"),
        (" Stop ", "opted_out"),
        ("Stop!", "opted_out"),
        ("\tUNSUBSCRIBE\n", "opted_out"),
        ("\uff33\uff54\uff4f\uff50", "opted_out"),  # full-width letters
        ("START", "opted_in"),
        ("start.", "opted_in"),
        ("please stop calling", None),
        ("don't stop", None),
        ("stopping by at 3", None),
        ("stop stop", None),
        ("", None),
        (None, None),
    ],
)
def test_default_keywords(text: str | None, expected: str | None) -> None:
    assert consent_change(text) == expected


def test_configured_keywords_and_opt_out_wins() -> None:
    assert consent_change("cancelar", ["STOP", "cancelar"], ["START"]) == "opted_out"
    assert consent_change("Please  Stop", ["please stop"], []) == "opted_out"
    assert consent_change("both", ["BOTH"], ["both"]) == "opted_out"
    assert consent_change("STOP", [], ["START"]) is None


def test_config_build_adds_to_the_defaults() -> None:
    config = NormaliseConfig.build(opt_out=["CANCELAR", "STOP"], opt_in=["VOLTAR"])
    assert config.opt_out_keywords == ("STOP", "UNSUBSCRIBE", "CANCELAR")
    assert config.opt_in_keywords == ("START", "VOLTAR")


def _text(provider: str, text: str, case: str = "text") -> bytes:
    body = orjson.loads(fixture_bytes(provider, case))
    if provider == "whapi":
        body["messages"][0]["text"]["body"] = text
    elif provider == "meta":
        body["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = text
    else:
        body["data"]["message"] = {"conversation": text}
    return orjson.dumps(body)


@pytest.mark.parametrize("provider", ["whapi", "meta", "evolution"])
def test_an_inbound_stop_is_followed_by_consent_changed(provider: str) -> None:
    message, consent = normalise(delivery(provider, body=_text(provider, " Stop ")))
    assert isinstance(message, MessageReceived)
    assert isinstance(consent, ConsentChanged)
    assert (consent.state, consent.keyword) == ("opted_out", "STOP")
    assert consent.chat_key == message.chat_key
    assert consent.contact_phone == message.contact_phone == "15550001234"
    assert (consent.provider_message_id, consent.message_id) == (message.provider_message_id, message.message_id)
    assert consent.occurred_at == message.occurred_at
    assert consent.event_id not in (message.event_id,)
    assert normalise(delivery(provider, body=_text(provider, " Stop "))) == [message, consent]


def test_start_opts_back_in() -> None:
    [_, consent] = normalise(delivery("whapi", body=_text("whapi", "start")))
    assert consent.state == "opted_in"


def test_outbound_and_group_texts_never_change_consent() -> None:
    assert len(normalise(delivery("whapi", body=_text("whapi", "STOP", case="text_outbound")))) == 1
    assert len(normalise(delivery("whapi", body=_text("whapi", "STOP", case="group_text")))) == 1


def test_configured_keyword() -> None:
    config = NormaliseConfig.build(opt_out=["CANCELAR"])
    [_, consent] = normalise(delivery("whapi", body=_text("whapi", "Cancelar")), config)
    assert (consent.state, consent.keyword) == ("opted_out", "CANCELAR")
