"""DNS rebinding against the media worker's HTTP client: a name that resolves to a public
address when checked and to an internal one when connected gets nowhere, because the name is
resolved once and the connection goes to the address that was checked. The URL keeps the name:
over real TLS, the certificate is checked against the name (SNI) and Host carries it."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from msgmem.localstack.http_server import serving
from streams.media.pinning import BlockedAddress, PinnedBackend, pinned_client

PUBLIC = "93.184.216.34"


class Resolver:
    """Answers scripted address lists, one per call, and counts the calls."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers, self.calls = list(answers), 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return self.answers[min(self.calls, len(self.answers)) - 1]


class Recorder(httpcore.AsyncNetworkBackend):
    """Records where a connection would go, and goes nowhere."""

    def __init__(self) -> None:
        self.targets: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, timeout=None, local_address=None, socket_options=None):  # type: ignore[no-untyped-def]
        self.targets.append((host, port))
        raise httpcore.ConnectError("recorded")


async def test_a_rebinding_name_is_resolved_once_and_the_checked_address_is_the_one_connected() -> None:
    rebinding, inner = Resolver([PUBLIC], ["127.0.0.1"]), Recorder()
    backend = PinnedBackend((), rebinding, inner)
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_tcp("media.attacker.test", 443)
    assert rebinding.calls == 1 and inner.targets == [(PUBLIC, 443)]
    with pytest.raises(BlockedAddress, match=r"media.attacker.test resolves to 127.0.0.1, a non-public address \(loopback\)"):
        await backend.connect_tcp("media.attacker.test", 443)  # the next connection asks again, and is checked again
    assert inner.targets == [(PUBLIC, 443)]


@pytest.mark.parametrize("answer", [[PUBLIC, "10.0.0.7"], ["::ffff:169.254.169.254", PUBLIC], ["fd00::1"]])
async def test_one_internal_address_among_the_answers_blocks_the_name(answer: list[str]) -> None:
    inner = Recorder()
    with pytest.raises(BlockedAddress, match="rule: public addresses only"):
        await PinnedBackend((), Resolver(answer), inner).connect_tcp("media.attacker.test", 443)
    assert inner.targets == []


async def test_a_trusted_origin_is_exempt_only_on_its_own_host_and_port() -> None:
    inner = Recorder()
    backend = PinnedBackend([("http", "evolution", 8080)], Resolver(["172.18.0.5"]), inner)
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_tcp("evolution", 8080)
    with pytest.raises(BlockedAddress):
        await backend.connect_tcp("evolution", 8081)
    assert inner.targets == [("172.18.0.5", 8080)]


async def test_unix_sockets_are_refused() -> None:
    with pytest.raises(BlockedAddress):
        await PinnedBackend().connect_unix_socket("/var/run/docker.sock")


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(pem)
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_file, key_file, pem.decode()


async def echo_host(request: Request) -> JSONResponse:
    return JSONResponse({"host": request.headers.get("host"), "client": request.client.host if request.client else None})


async def test_the_pinned_connection_keeps_the_name_for_host_and_the_certificate(tmp_path: Path) -> None:
    """media.test has no DNS; the resolver answers 127.0.0.1 (trusted here, as a test's fake is).
    The certificate names media.test only, not 127.0.0.1: TLS succeeds only if SNI and the
    hostname check used the name while the socket went to the checked address."""
    cert_file, key_file, pem = _certificate(tmp_path, "media.test")
    trust = ssl.create_default_context(cadata=pem)
    app = Starlette(routes=[Route("/who", echo_host)])
    async with serving(app, ssl_certfile=str(cert_file), ssl_keyfile=str(key_file)) as url:
        port = int(url.rsplit(":", 1)[1])
        resolver = Resolver(["127.0.0.1"])
        limits = httpx.Limits(max_connections=2)
        async with pinned_client([("https", "media.test", port)], timeout=5, limits=limits, resolve=resolver,
                                 ssl_context=trust) as client:  # fmt: skip
            answer = (await client.get(f"https://media.test:{port}/who")).json()
            assert answer == {"host": f"media.test:{port}", "client": "127.0.0.1"}
            assert resolver.calls == 1
        async with pinned_client([], timeout=5, limits=limits, resolve=resolver, ssl_context=trust) as client:
            with pytest.raises(BlockedAddress, match="media.test resolves to 127.0.0.1"):
                await client.get(f"https://media.test:{port}/who")  # untrusted: the same name is refused
    assert ipaddress.ip_address(answer["client"]).is_loopback
