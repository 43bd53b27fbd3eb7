"""Pure rules of media downloads: address classes, media id patterns, type sniffing, origins,
the https-443 rule and where a credential may go."""

from __future__ import annotations

import pytest

from contracts.origins import describe, origin_of, parse_origin
from contracts.settings import Settings
from streams.media.access import ProviderAccess
from streams.media.addresses import non_public
from streams.media.ids import instance_problem, media_id_problem
from streams.media.mime import FALLBACK_MIME, sniff, stored_mime
from tests.fakes.events import fixture_path


@pytest.mark.parametrize(
    ("address", "why"),
    [("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"),
     ("172.16.0.1", "private"), ("192.168.0.1", "private"), ("fd00::1", "private"), ("169.254.169.254", "link-local"),
     ("fe80::1", "link-local"), ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("224.0.0.1", "multicast"),
     ("ff02::1", "multicast"), ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"),
     ("100.64.0.1", "shared (CGNAT)"), ("198.18.0.1", "private"), ("192.0.2.1", "private"),
     ("::ffff:127.0.0.1", "IPv4-mapped loopback"), ("::ffff:10.0.0.1", "IPv4-mapped private"),
     ("::ffff:169.254.169.254", "IPv4-mapped link-local"), ("[::ffff:7f00:1]", "IPv4-mapped loopback"),
     ("::127.0.0.1", "IPv4-compatible loopback"), ("2002:7f00:1::", "6to4 loopback"), ("2002:a00:1::1", "6to4 private"),
     ("64:ff9b::7f00:1", "NAT64 loopback"), ("64:ff9b::a9fe:a9fe", "NAT64 link-local"), ("64:ff9b:1::1", "reserved"),
     ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo loopback"), ("2001:db8::1", "private"),
     ("localhost", "not an IP address")],
)  # fmt: skip
def test_non_public_addresses_are_named(address: str, why: str) -> None:
    assert non_public(address) == why


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:93.184.216.34",
                                     "2002:5db8:d822::1", "64:ff9b::808:808", "157.240.1.1"])  # fmt: skip
def test_public_addresses_pass(address: str) -> None:
    assert non_public(address) is None


@pytest.mark.parametrize("value", ["oga-7f3c1a2b9d4e5f60718293a4", "1205774054289243", "jpeg-1b2c.3d4e", "A_b-9"])
def test_real_media_ids_match(value: str) -> None:
    assert media_id_problem(value) is None


@pytest.mark.parametrize("value", ["", ".", "..", "../x", "x/..", "a/b", "a\\b", "a..b", "%2e%2e", "a%2fb", "x?y", "x#y",
                                   "x y", "-x", ".x", "é", "x\n", "x" * 256])  # fmt: skip
def test_crafted_media_ids_do_not(value: str) -> None:
    assert media_id_problem(value) == "provider_media_id does not match the media id pattern " + (
        "[A-Za-z0-9](?:[A-Za-z0-9_-]|\\.(?!\\.)){0,254}"
    )


def test_evolution_instance_names_are_free_text_but_one_segment() -> None:
    for name in ("acme-main", "Acme Main", "acme.main", "loja_01", "..."):
        assert instance_problem(name) is None, name
    for name in ("", ".", "..", "a/b", "a\\b", "a%2fb", "a?b", "a#b", "a\x00b", "x" * 129):
        assert instance_problem(name) is not None, name


@pytest.mark.parametrize(
    ("file", "mime"),
    [("receipt_photo.jpg", "image/jpeg"), ("sticker.webp", "image/webp"), ("voice_note.ogg", "audio/ogg"),
     ("audio_clip.mp3", "audio/mpeg"), ("video_clip.mp4", "video/mp4"), ("invoice_text.pdf", "application/pdf")],
)  # fmt: skip
def test_the_fixtures_are_sniffed_as_what_they_are(file: str, mime: str) -> None:
    head = fixture_path(file).read_bytes()[:4096]
    assert sniff(head) == mime
    assert stored_mime((mime.upper() + "; codecs=x",), head) == mime  # the claim, normalised


def test_claims_the_bytes_do_not_confirm_are_not_stored() -> None:
    exe = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 120
    assert stored_mime(("image/jpeg", "image/jpeg"), exe) == FALLBACK_MIME
    assert stored_mime((None, None), exe) == FALLBACK_MIME
    assert stored_mime(("application/x-msdownload",), exe) == FALLBACK_MIME  # not on the allow-list
    assert stored_mime(("text/html",), b"<html><script>alert(1)</script>") == "text/plain"  # never text/html
    assert stored_mime(("image/svg+xml",), b"<svg onload=alert(1)>") == "text/plain"
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    assert stored_mime(("image/jpeg", None), png) == "image/png"  # what the bytes are
    assert stored_mime(("audio/mp4",), b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 20) == "audio/mp4"
    assert stored_mime(("video/mp4",), b"\x00\x00\x00\x20ftypheic" + b"\x00" * 20) == "image/heic"  # a HEIC is no video
    assert stored_mime(("text/plain",), "caf\u00e9 ".encode()[:4]) == "text/plain"  # a character cut at the end
    assert stored_mime(("text/plain",), b"text\x00with NUL") == FALLBACK_MIME


@pytest.mark.parametrize(
    ("text", "origin"),
    [("http://127.0.0.1:8080", ("http", "127.0.0.1", 8080)), ("HTTPS://Evo.Internal", ("https", "evo.internal", 443)),
     ("http://[::1]:9/", ("http", "::1", 9)), ("http://evolution-api", ("http", "evolution-api", 80))],
)  # fmt: skip
def test_trusted_origins_parse_exactly(text: str, origin: tuple[str, str, int]) -> None:
    assert parse_origin(text) == origin and parse_origin(describe(origin)) == origin


@pytest.mark.parametrize("text", ["http://x/path", "http://u:p@x", "ftp://x", "x:80", "http://x?q", "http://x:99999"])
def test_anything_but_an_origin_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_origin(text)
    with pytest.raises(ValueError, match="MEDIA_TRUSTED_ORIGINS"):
        Settings(_env_file=None, media_trusted_origins=text)  # type: ignore[call-arg]


META = ProviderAccess("https://graph.facebook.com", {"authorization": "Bearer m"}, ("lookaside.fbsbx.com", "cdn.meta.test"),
                      None, ("lookaside.fbsbx.com",))  # fmt: skip
WHAPI = ProviderAccess("https://gate.whapi.cloud", {"authorization": "Bearer w"}, ("media.whapi.test",))
EVOLUTION = ProviderAccess("http://evolution:8080", {"apikey": "e"}, (), None, (),
                           frozenset({("http", "evolution", 8080)}))  # fmt: skip


@pytest.mark.parametrize(
    ("access", "url", "gets_it"),
    [(META, "https://graph.facebook.com/v21.0/1", True), (META, "https://lookaside.fbsbx.com/x?ext=1", True),
     (META, "https://cdn.meta.test/x", False), (META, "https://lookaside.fbsbx.com:8443/x", False),
     (META, "http://lookaside.fbsbx.com/x", False), (META, "https://evil.lookaside.fbsbx.com/x", False),
     (WHAPI, "https://gate.whapi.cloud/media/x", True), (WHAPI, "https://media.whapi.test/x", False),
     (WHAPI, "https://gate.whapi.cloud:444/media/x", False), (EVOLUTION, "http://evolution:8080/chat/x", True),
     (EVOLUTION, "https://evolution:8080/chat/x", False), (EVOLUTION, "http://evolution:8081/chat/x", False)],
)  # fmt: skip
def test_a_credential_goes_to_its_own_origin_only(access: ProviderAccess, url: str, gets_it: bool) -> None:
    assert bool(access.credentials_for(url)) is gets_it


def test_rules_name_the_host_never_the_url() -> None:
    assert WHAPI.problem("https://evil.test/steal?token=x") == "evil.test is not on the allow-list of media hosts"
    assert WHAPI.problem("http://media.whapi.test/a/b?sig=1") == (
        "media.whapi.test:80 over http breaks the https-on-port-443 rule (MEDIA_TRUSTED_ORIGINS lists exceptions)"
    )
    assert EVOLUTION.problem("http://evolution:8080/chat/x") is None  # trusted: its exact origin
    assert EVOLUTION.problem("http://evolution:8081/chat/x") is not None
    assert origin_of("https://user:pw@gate.whapi.cloud/") is None and WHAPI.problem("javascript:alert(1)") is not None
