"""Pure rules of the media stage: jobs, the allow-list, fetch plans, paths and events."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from contracts import media
from contracts.settings import Settings
from streams.media.agent import provider_access
from streams.media.logic import (
    NotConfigured,
    Placement,
    ProviderAccess,
    Refused,
    check_declared_size,
    check_sha256,
    content_path,
    decode_inline,
    failed,
    inline_base64,
    job_for,
    plan_fetch,
    skipped,
    stored,
)
from tests.fakes.events import inline_delivery, media_message, message_events, with_media

NOW = datetime(2026, 11, 21, tzinfo=UTC)
SHA = "464110b337c34eb4afa3b3399046138902422ee61ba4eacd5778fb47f96563de"
PROVIDERS = {
    "whapi": ProviderAccess("https://gate.whapi.cloud", {"authorization": "Bearer w"}, ("media.whapi.test",)),
    "meta": ProviderAccess("https://graph.facebook.com", {"authorization": "Bearer m"}, ("lookaside.fbsbx.com",)),
    "evolution": ProviderAccess("http://evolution.internal:8080", {"apikey": "e"}, ()),
}


def test_only_messages_with_media_become_jobs() -> None:
    assert job_for(message_events("whapi", "text")[0]) is None
    assert job_for(message_events("whapi", "status_update")[0]) is None
    job = job_for(media_message("whapi", "voice"))
    assert job is not None and job.kind == "voice" and job.ref.sha256 == SHA
    assert job.media_id == media.media_id(job.event.message_id)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://gate.whapi.cloud/media/abc", True),
        ("https://media.whapi.test/files/x.oga", True),
        ("http://media.whapi.test/files/x.oga", False),  # extra hosts are https only
        ("https://gate.whapi.cloud:8443/media/abc", False),  # another port is another origin
        ("https://evil.example/media/abc", False),
        ("https://media.whapi.test.evil.example/x", False),
        ("https://user:pw@gate.whapi.cloud/media/abc", False),
        ("http://169.254.169.254/latest/meta-data", False),
        ("file:///etc/passwd", False),
        ("not a url", False),
    ],
)
def test_allow_list(url: str, allowed: bool) -> None:
    assert (PROVIDERS["whapi"].problem(url) is None) is allowed


def test_subdomain_entries_start_with_a_dot() -> None:
    access = ProviderAccess(None, {}, (".fbsbx.com",))
    assert access.problem("https://lookaside.fbsbx.com/x") is None
    assert access.problem("https://fbsbx.com.evil/x") == "fbsbx.com.evil is not on the allow-list of media hosts"


def test_plans_per_provider() -> None:
    whapi = plan_fetch(job_for(media_message("whapi", "voice")), PROVIDERS, "v21.0")  # type: ignore[arg-type]
    assert (whapi.step, whapi.url) == ("download", "https://gate.whapi.cloud/media/oga-7f3c1a2b9d4e5f60718293a4")
    meta = plan_fetch(job_for(media_message("meta", "voice")), PROVIDERS, "v21.0")  # type: ignore[arg-type]
    assert (meta.step, meta.url) == ("meta_lookup", "https://graph.facebook.com/v21.0/1205774054289243")
    evolution = plan_fetch(job_for(media_message("evolution", "voice")), PROVIDERS, "v21.0")  # type: ignore[arg-type]
    assert evolution.step == "evolution_base64" and evolution.method == "POST"
    assert evolution.url == "http://evolution.internal:8080/chat/getBase64FromMediaMessage/acme-main"
    assert evolution.json == {"message": {"key": {"id": "A1B2C3D4E5F60718293A4B5C6D7E8F90"}}, "convertToMp4": False}


def test_a_crafted_url_is_refused_without_a_request() -> None:
    event = with_media(media_message("whapi", "voice"), provider_media_id=None, url="http://10.0.0.1/admin")
    with pytest.raises(Refused) as caught:
        plan_fetch(job_for(event), PROVIDERS, "v21.0")  # type: ignore[arg-type]
    assert caught.value.reason == "host_not_allowed"
    allowed = with_media(media_message("whapi", "voice"), provider_media_id=None, url="https://media.whapi.test/f.oga")
    assert plan_fetch(job_for(allowed), PROVIDERS, "v21.0").url == "https://media.whapi.test/f.oga"  # type: ignore[arg-type]


def test_unconfigured_provider_has_no_source() -> None:
    with pytest.raises(Refused) as caught:
        plan_fetch(job_for(media_message("evolution", "voice")), {}, "v21.0")  # type: ignore[arg-type]
    assert caught.value.reason == "no_source"


def test_size_and_hash_checks() -> None:
    ref = media_message("whapi", "voice").media
    check_declared_size(ref, 23485)  # type: ignore[arg-type]
    with pytest.raises(Refused, match="exceeds"):
        check_declared_size(ref, 23484)  # type: ignore[arg-type]
    check_sha256(None, SHA)
    check_sha256(SHA.upper(), SHA)
    with pytest.raises(Refused) as caught:
        check_sha256(SHA, "0" * 64)
    assert caught.value.reason == "sha256_mismatch"


def test_paths_are_content_addressed() -> None:
    assert content_path(SHA, "audio/ogg; codecs=opus") == f"46/41/{SHA}.ogg"
    assert content_path(SHA, "application/x-unknown") == f"46/41/{SHA}"


def test_events_carry_what_chat_media_needs() -> None:
    job = job_for(media_message("whapi", "voice"))
    assert job is not None
    event = stored(job, Placement("local", "chat-media", "p"), sha256=SHA, size=23485, mime="audio/ogg", now=NOW,
                   retention_days=30, reused=False)  # fmt: skip
    assert event.message_id == job.event.message_id and event.chat_key == job.event.chat_key
    assert event.expires_at == NOW + timedelta(days=30) and event.duration_seconds == 12
    assert media.decode_event(media.encode_event(event)) == event
    again = stored(job, Placement("local", "chat-media", "p"), sha256=SHA, size=1, mime=None, now=NOW,
                   retention_days=0, reused=True)  # fmt: skip
    assert again.event_id == event.event_id and again.expires_at is None  # a replay is the same event
    failure = failed(job, "too_large", "x" * 5000, attempts=1, now=NOW)
    assert failure.event_id != event.event_id and len(failure.error) == 1000 and failure.final


# --- providers without credentials ------------------------------------------------------------------


def unconfigured(**values: object) -> dict[str, ProviderAccess]:
    return provider_access(Settings(_env_file=None, **values))  # type: ignore[call-arg]


def plan(event, providers: dict[str, ProviderAccess]):  # type: ignore[no-untyped-def]
    return plan_fetch(job_for(event), providers, "v21.0")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("provider", "values", "missing"),
    [
        ("meta", {}, "META_ACCESS_TOKEN is not set"),
        ("meta", {"meta_access_token": ""}, "META_ACCESS_TOKEN is not set"),  # an empty line in .env
        ("meta", {"meta_access_token": "t", "meta_graph_url": ""}, "META_GRAPH_URL is not set"),
        ("whapi", {}, "WHAPI_API_TOKEN (or WHAPI_TOKEN) is not set"),
        ("whapi", {"whapi_token": "t", "whapi_api_url": ""}, "WHAPI_API_URL is not set"),
        ("evolution", {}, "EVOLUTION_API_URL is not set"),
        ("evolution", {"evolution_api_url": "http://evo:8080"}, "EVOLUTION_API_KEY is not set"),
    ],
)
def test_a_provider_without_its_settings_is_not_configured(provider: str, values: dict, missing: str) -> None:
    access = unconfigured(**values)[provider]
    assert access.unset == missing
    with pytest.raises(NotConfigured) as caught:
        plan(media_message(provider, "voice"), unconfigured(**values))
    assert str(caught.value) == missing


def test_whapi_media_fall_back_to_the_webhook_token_and_credentials_are_configured() -> None:
    providers = unconfigured(whapi_token="webhook-token", meta_access_token="m", evolution_api_url="http://evo:8080",
                             evolution_api_key="e", media_trusted_origins="http://evo:8080")  # fmt: skip
    assert all(access.unset is None for access in providers.values())
    assert providers["whapi"].headers == {"authorization": "Bearer webhook-token"}
    assert plan(media_message("whapi", "voice"), providers).step == "download"


def test_a_listed_media_host_still_serves_while_the_api_is_not_configured() -> None:
    providers = unconfigured(whapi_media_hosts="media.whapi.test")
    event = with_media(media_message("whapi", "voice"), url="https://media.whapi.test/f.oga")
    got = plan(event, providers)
    assert (got.step, got.url, got.access.base_url, got.access.headers) == ("download", "https://media.whapi.test/f.oga",
                                                                            None, {})  # fmt: skip
    api_origin = with_media(event, provider_media_id=None, url="https://gate.whapi.cloud/media/x")
    with pytest.raises(NotConfigured):  # the API's own origin needs the token
        plan(api_origin, providers)


def test_an_api_url_breaking_the_https_rule_is_not_usable_unless_trusted() -> None:
    plain = unconfigured(evolution_api_url="http://evo:8080", evolution_api_key="e")["evolution"]
    assert plain.unset == ("EVOLUTION_API_URL is not usable: evo:8080 over http breaks the https-on-port-443 rule "
                           "(MEDIA_TRUSTED_ORIGINS lists exceptions)")  # fmt: skip
    with pytest.raises(NotConfigured, match="EVOLUTION_API_URL is not usable"):
        plan(media_message("evolution", "voice"), {"evolution": plain})
    other_port = unconfigured(evolution_api_url="http://evo:8080", evolution_api_key="e",
                              media_trusted_origins="http://evo:8081,https://evo:8080")  # fmt: skip
    assert other_port["evolution"].unset is not None  # an exact origin: scheme and port included
    assert unconfigured(meta_access_token="m")["meta"].unset is None  # https://graph.facebook.com


def test_evolution_media_never_come_from_the_message_url() -> None:
    event = media_message("evolution", "image_with_caption")
    assert event.media is not None and event.media.url  # WhatsApp's .enc URL, set by the sender's client
    with pytest.raises(NotConfigured, match="EVOLUTION_API_URL"):
        plan(event, unconfigured())
    configured = unconfigured(evolution_api_url="https://evo.example", evolution_api_key="e")
    for url in (event.media.url, "https://s3.example.test/evolution/receipt.jpeg", "http://169.254.169.254/"):
        got = plan(with_media(event, url=url), configured)
        assert (got.step, got.url) == ("evolution_base64", "https://evo.example/chat/getBase64FromMediaMessage/acme-main")


# --- inline media ---------------------------------------------------------------------------------


def test_inline_base64_is_found_by_the_message_key() -> None:
    record, event = inline_delivery("voice", "voice_note.ogg")
    text = inline_base64(record.value, event.provider_message_id)
    assert base64.b64decode(text) == decode_inline(text, 10**6)
    body = orjson.loads(record.value)
    body["data"] = [{"key": {"id": "other"}, "message": {"base64": "AAAA"}}, body["data"]]
    assert inline_base64(orjson.dumps(body), event.provider_message_id) == text
    with pytest.raises(Refused) as caught:
        inline_base64(orjson.dumps(body), "not-there")
    assert caught.value.reason == "not_found"
    body["data"][1]["message"]["base64"] = 42
    with pytest.raises(Refused) as caught:
        inline_base64(orjson.dumps(body), event.provider_message_id)
    assert (caught.value.reason, str(caught.value)) == ("malformed", "data[1].message.base64: int, not base64 text")


def test_inline_base64_variants_decode_and_malformed_ones_are_refused_without_their_text() -> None:
    data = bytes(range(256)) * 10
    text = base64.b64encode(data).decode()
    assert decode_inline(text, len(data)) == data
    assert decode_inline("data:audio/ogg;base64," + text, len(data)) == data
    assert decode_inline("\r\n".join(text[i : i + 76] for i in range(0, len(text), 76)), len(data)) == data
    for bad in ("SECRET-not*base64!", text[:-1], "", "ünïcode", "QUJD" + "#" * 4):
        with pytest.raises(Refused) as caught:
            decode_inline(bad, len(data))
        assert caught.value.reason == "malformed" and (not bad or bad not in str(caught.value))
        assert "SECRET" not in str(caught.value)
    for limit in (len(data) - 1, 100):
        with pytest.raises(Refused) as caught:
            decode_inline(text, limit)
        assert caught.value.reason == "too_large"


def test_failures_and_skips_keep_what_the_webhook_declared() -> None:
    job = job_for(media_message("whapi", "voice"))
    assert job is not None
    failure = failed(job, "not_found", "gone", attempts=1, now=NOW)
    skip = skipped(job, "META_ACCESS_TOKEN is not set", now=NOW)
    for event in (failure, skip):
        assert (event.size_bytes, event.sha256) == (23485, SHA)
        assert media.decode_event(media.encode_event(event)) == event
    assert (skip.type, skip.reason, skip.detail, skip.skipped_at) == ("media_skipped", "not_configured",
                                                                      "META_ACCESS_TOKEN is not set", NOW)  # fmt: skip
    assert skip.event_id not in (failure.event_id, stored(job, Placement("local", "b", "p"), sha256=SHA, size=1,
                                 mime=None, now=NOW, retention_days=0, reused=False).event_id)  # fmt: skip
    bare = job_for(with_media(media_message("whapi", "voice"), size_bytes=None, sha256=None))
    assert (skipped(bare, "x", now=NOW).size_bytes, failed(bare, "rejected", "x", attempts=1, now=NOW).sha256) == (None, None)  # type: ignore[arg-type]
