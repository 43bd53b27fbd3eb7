"""What listens, and what it answers a stranger: over real sockets, against the real app
and the real Postgres. Each test is the probe and what must not happen."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml
from pydantic import SecretStr

from contracts.settings import Environment, Settings
from ingest.bootstrap import create_app as ingest_app
from ingest.publisher import RecordingPublisher
from msgmem.localstack.http_server import serving
from msgmem.localstack.processes import free_port
from projections.consumer import running_projector
from projections.messages.main import PROJECTOR
from projections.recall.app import create_app as recall_app
from runtime.media_storage import LocalMediaStore
from tests.services import running

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KEY = "Zq8vN2rT-k5Lw9Xc3Hm7Pb4Yd6Fs1Gj0Ae"
CHAT = "whapi:TESTCH-A1B2C:15550001234@s.whatsapp.net"


def recall_settings(settings: Settings, **overrides: object) -> Settings:
    return settings.model_copy(update={"recall_api_key": SecretStr(KEY), "openai_api_key": None} | overrides)


@pytest.fixture
async def recall_url(settings: Settings) -> AsyncIterator[str]:
    async with serving(recall_app(recall_settings(settings))) as url:
        yield url


@pytest.mark.parametrize(
    "query",
    ["q=%00", "q=order%004271", "q=a%07b", "q=%1B%5B31m", "q=%7F", "q=%C2%85", "q=%EF%BF%BE",
     "q=%ED%A0%80",  # a UTF-16 surrogate, as UTF-8: not UTF-8
     "q=%FF%FE", "q=%C3", "q=ok&k=0", "q=ok&k=abc", "q=ok&min_similarity=nan", "q=ok&min_similarity=2"],
)  # fmt: skip
async def test_recall_refuses_invalid_text_with_422_never_a_500(recall_url: str, query: str) -> None:
    async with httpx.AsyncClient(base_url=recall_url) as client:
        answer = await client.get(f"/chats/{CHAT}/recall?{query}", headers={"X-API-Key": KEY})
    assert answer.status_code == 422
    body = answer.json()
    assert body["error"] == "invalid_query"
    value = query.split("=", 2)[-1]
    assert value not in answer.text and httpx.QueryParams(query).get("q", "") not in body["reason"].split(": ")


@pytest.mark.parametrize("query", ["q=%00", "q=a%07b", "q=%EF%BF%BE", "q=%ED%A0%80", "q=%FF%FE", "window=0",
                                   "max_tokens=-1", "k=51"])  # fmt: skip
async def test_context_refuses_invalid_text_with_422_naming_the_field(recall_url: str, query: str) -> None:
    async with httpx.AsyncClient(base_url=recall_url) as client:
        answer = await client.get(f"/chats/{CHAT}/context?{query}", headers={"X-API-Key": KEY})
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_query"
    assert query.split("=")[1] not in answer.text


@pytest.mark.parametrize("chat", ["chat%00key", "chat%0Akey", "%FFchat"])
async def test_recall_refuses_an_invalid_chat_key_with_422(recall_url: str, chat: str) -> None:
    async with httpx.AsyncClient(base_url=recall_url) as client:
        answer = await client.get(f"/chats/{chat}/recall?q=order", headers={"X-API-Key": KEY})
    assert answer.status_code == 422 and answer.json()["reason"] == "chat: invalid_characters"


@pytest.mark.parametrize("query", ["", "q=%00", "q=ok&k=0", "q=" + "x" * 5000, "q=%FF", "limit=0&cursor=%00"])
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "forged"}, {"Authorization": "Bearer forged"}])
@pytest.mark.parametrize("path", [f"/chats/{CHAT}/recall", f"/chats/{CHAT}/context", f"/chats/{CHAT}/messages",
                                  f"/chats/{CHAT}", "/chats", "/chats/%FF"])  # fmt: skip
async def test_recall_checks_the_key_before_the_query(
    recall_url: str, path: str, query: str, headers: dict[str, str]
) -> None:
    """A stranger learns nothing about the parameters: every request without the key is a
    bare 401, whatever its query, with no reason why (recall and the memory API alike)."""
    async with httpx.AsyncClient(base_url=recall_url) as client:
        answer = await client.get(f"{path}?{query}", headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {"error": "unauthorized", "reason": "unauthorized"}


async def test_a_clean_query_still_recalls(recall_url: str) -> None:
    async with httpx.AsyncClient(base_url=recall_url) as client:
        answer = await client.get(f"/chats/{CHAT}/recall", params={"q": "order 4271\tshipped"}, headers={"X-API-Key": KEY})
    # Past the checks and into the search: no such chat in this database, so 404, not 422.
    assert answer.status_code == 404 and answer.json()["error"] == "unknown_chat"


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc"])
async def test_production_serves_no_openapi_document(settings: Settings, path: str) -> None:
    production = {"environment": Environment.PRODUCTION}
    for app in (recall_app(recall_settings(settings, **production)),
                ingest_app(settings.model_copy(update=production), RecordingPublisher())):  # fmt: skip
        async with serving(app) as url, httpx.AsyncClient(base_url=url) as client:
            assert (await client.get(path)).status_code == 404


async def test_openapi_only_when_asked(settings: Settings) -> None:
    asked = recall_settings(settings, environment=Environment.PRODUCTION, serve_openapi=True)
    async with serving(recall_app(asked)) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/openapi.json")).status_code == 200
    refused = settings.model_copy(update={"serve_openapi": False})
    async with serving(ingest_app(refused, RecordingPublisher())) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/openapi.json")).status_code == 404


def _listening_address(port: int) -> str:
    """The address a listening TCP socket on ``port`` is bound to, from /proc/net/tcp{,6}."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                if len(address) == 8:
                    return socket.inet_ntoa(bytes.fromhex(address)[::-1])
                return "::" if set(address) == {"0"} else address
    raise AssertionError(f"nothing listens on port {port}")


async def test_projector_metrics_listen_on_loopback_only(settings: Settings) -> None:
    async with running_projector(settings, PROJECTOR, group="security-metrics", metrics_port=0) as running:
        assert running.metrics_port
        assert _listening_address(running.metrics_port) == "127.0.0.1"


async def test_stage_web_listens_on_loopback_only(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    with running("normalize", settings, tmp_path, STAGE_WEB_PORT=str(port)):
        assert _listening_address(port) == "127.0.0.1"
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200


def test_compose_publishes_every_port_on_loopback_only() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    published = [(name, p) for name, service in compose["services"].items() for p in service.get("ports", [])]
    assert published and all(str(p).startswith("127.0.0.1:") for _, p in published), published


def test_local_media_is_stored_in_owner_only_directories(tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path / "state" / "media", "chat-media")
    for directory in (tmp_path / "state", store.root, store.staging_dir):
        assert directory.stat().st_mode & 0o777 == 0o700, directory
