"""Pure rules of the media stage: jobs, the allow-list, fetch plans, paths and events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts import media
from streams.media.logic import (
    Placement,
    ProviderAccess,
    Refused,
    check_declared_size,
    check_sha256,
    content_path,
    failed,
    job_for,
    plan_fetch,
    stored,
)
from tests.fakes.events import media_message, message_events, with_media

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
    assert PROVIDERS["whapi"].allows(url) is allowed


def test_subdomain_entries_start_with_a_dot() -> None:
    access = ProviderAccess(None, {}, (".fbsbx.com",))
    assert access.allows("https://lookaside.fbsbx.com/x") and not access.allows("https://fbsbx.com.evil/x")


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
