"""From the attacker's (and the curious operator's) side: a full run with secrets, customer
texts, phone numbers, forged credentials and poison leaves none of them in any process's
log, in any dead letter's text or in any alert.

ingest, normalize, the projector and the alerts worker run as real child processes against
the test stack, at the production log level; a local sink plays Telegram and the alert
webhook. The run posts good messages, a message whose timestamp is a customer's text
(normalize's poison), a message with a NUL byte Postgres refuses (the projector's poison),
forged credentials on every provider route and an outbound send with values in the wrong
fields. A dead letter keeps the failed input's bytes (base64, so `msgmem dlq retry` can run
it again): that field is the input itself and is not searched; every other field is.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from contextlib import ExitStack
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from contracts.settings import Settings
from msgmem.dlq import load
from msgmem.localstack.http_server import serving
from msgmem.localstack.processes import free_port
from msgmem.localstack.stack import Stack
from msgmem.send import Credentials, signed_headers
from tests.conftest import FIXTURES
from tests.integration.test_alerts import fake_endpoints
from tests.services import running
from tests.waiting import eventually

pytestmark = pytest.mark.integration

WHAPI = FIXTURES / "webhooks" / "whapi"


def _secret() -> str:
    return f"s3cr3t-{secrets.token_urlsafe(24)}"


SECRETS = {
    "WHAPI_TOKEN": _secret(), "META_APP_SECRET": _secret(), "META_VERIFY_TOKEN": _secret(),
    "EVOLUTION_API_KEY": _secret(), "INGEST_API_KEY": _secret(), "RECALL_API_KEY": _secret(),
    "TELEGRAM_BOT_TOKEN": f"{secrets.randbelow(10**9)}:{secrets.token_urlsafe(26)}",
}  # fmt: skip
FORGED = _secret()  # what an attacker sends in place of a credential
RUN = uuid.uuid4().hex[:12]  # in message ids only: an id is not personal data


def _word() -> str:
    return uuid.uuid4().hex[:10]


PHONE = f"1555{secrets.randbelow(10**7):07d}"
NAME = f"Dana {_word()}"
TEXTS = {
    "good": f"my order {_word()} ships to 12 Elm Street",
    "timestamp": f"in the year of {_word()} the secret",  # a customer's text where a timestamp belongs
    "nul": f"nul byte note {_word()} \u0000 end",
    "outbound": f"agent wrote {_word()} in sent_at",
}


def _delivery() -> bytes:
    """One Whapi delivery of this run's chat: a good message, normalize's poison, the projector's."""
    body = orjson.loads((WHAPI / "text.json").read_bytes())
    template = dict(body["messages"][0], chat_id=f"{PHONE}@s.whatsapp.net", **{"from": PHONE}, from_name=NAME)
    sent = [dict(template, id=f"leak-{RUN}-{i}", timestamp=1795166100 + i) for i in range(3)]
    sent[0]["text"] = {"body": TEXTS["good"]}
    sent[1]["text"], sent[1]["timestamp"] = {"body": TEXTS["good"] + " again"}, TEXTS["timestamp"]
    sent[2]["text"] = {"body": TEXTS["nul"]}
    return orjson.dumps(dict(body, messages=sent))


def _needles() -> dict[str, str]:
    """What must appear nowhere: every secret, the forged one, the run's texts and phone number."""
    found = {f"secret {k}": v for k, v in SECRETS.items()} | {"forged": FORGED, "phone": PHONE, "name": NAME}
    return found | {f"text {k}": v.split(" \u0000")[0] for k, v in TEXTS.items()}


def _leaks(where: str, text: str) -> list[str]:
    return [f"{name} in {where}" for name, needle in _needles().items() if needle in text]


@pytest.fixture
def env() -> dict[str, str]:
    return SECRETS | {"INGEST_PORT": str(free_port()), "LOG_LEVEL": "INFO", "TELEGRAM_CHAT_ID": "-100042"}


async def _attack(ingest: str) -> list[httpx.Response]:
    creds = Credentials(SECRETS["WHAPI_TOKEN"], SECRETS["META_APP_SECRET"], SECRETS["EVOLUTION_API_KEY"],
                        SECRETS["INGEST_API_KEY"])  # fmt: skip
    body = _delivery()
    fixture = (WHAPI / "text.json").read_bytes()
    evolution = orjson.loads((FIXTURES / "webhooks" / "evolution" / "text.json").read_bytes()) | {"apikey": FORGED}
    outbound = {"provider": "meta", "channel_id": "100000000000001", "chat_id": PHONE, "provider_message_id": f"w-{RUN}",
                "type": "text", "text": TEXTS["outbound"], "sent_at": TEXTS["outbound"]}  # fmt: skip
    async with httpx.AsyncClient(base_url=ingest, timeout=30) as c:
        return [
            await c.post("/webhooks/whapi", content=body, headers=signed_headers("whapi", body, creds)),
            await c.post("/webhooks/whapi", content=fixture, headers=signed_headers("whapi", fixture, creds)),
            await c.post("/webhooks/whapi", content=body, headers={"authorization": f"Bearer {FORGED}"}),
            await c.post("/webhooks/meta", content=body, headers={"x-hub-signature-256": f"sha256={FORGED}"}),
            await c.get("/webhooks/meta", params={"hub.mode": "subscribe", "hub.verify_token": FORGED,
                                                  "hub.challenge": RUN}),  # fmt: skip
            await c.post("/webhooks/evolution", content=orjson.dumps(evolution)),
            await c.post("/events/outbound", content=orjson.dumps(outbound),
                         headers={"authorization": f"Bearer {SECRETS['INGEST_API_KEY']}"}),  # fmt: skip
            await c.post("/events/outbound", content=orjson.dumps(outbound), headers={"x-api-key": FORGED}),
        ]


async def test_no_secret_text_or_phone_in_logs_dead_letters_or_alerts(
    stack: Stack, settings: Settings, db: asyncpg.Connection, env: dict[str, str], tmp_path: Path
) -> None:
    logs = tmp_path
    received: list[tuple[str, dict]] = []  # type: ignore[type-arg]
    async with serving(fake_endpoints(received)) as sink:
        env |= {"TELEGRAM_API_URL": sink, "ALERT_WEBHOOK_URL": f"{sink}/hooks/dlq"}
        with ExitStack() as children:
            for name in ("alerts", "ingest", "normalize", "projector"):
                children.enter_context(running(name, settings, logs, **env))
            answers = await _attack(f"http://127.0.0.1:{env['INGEST_PORT']}")
            assert [r.status_code for r in answers] == [200, 200, 401, 401, 403, 401, 422, 401], [r.text for r in answers]

            await eventually(lambda: db.fetchval(
                "select count(*) = 1 from chat_messages where provider_message_id = $1", f"leak-{RUN}-0"), 60)

            async def both_letters() -> list:  # type: ignore[type-arg]
                ours = [x.letter for x in (await load(settings)).values()
                        if PHONE.encode() in (x.letter.key or b"") + x.letter.value]
                return ours if {x.stage for x in ours} >= {"normalize", "projector"} else []

            letters = await eventually(both_letters, 90)

            async def alerted() -> bool:
                ids = {x.dead_letter_id for x in letters}
                said = " ".join(str(body) for _, body in received)
                return all(i in said for i in ids) and {w for w, _ in received} >= {"webhook", SECRETS["TELEGRAM_BOT_TOKEN"]}

            await eventually(alerted, 60)
        # the children are stopped: their logs are complete

    problems: list[str] = []
    for response in answers:
        problems += _leaks(f"the answer to {response.request.method} {response.request.url.path}", response.text)
    for path in [*sorted(logs.glob("*.log")), stack.log]:  # and Kafka's and Postgres's own
        text = path.read_text()
        assert text.strip(), f"{path.name} is empty: nothing was searched"
        problems += _leaks(f"log {path.name}", text)
    for x in (await load(settings)).values():
        letter = x.letter
        problems += _leaks(f"letter {letter.dead_letter_id}", letter.model_dump_json(exclude={"value_b64", "key_b64"}))
        problems += _leaks(f"headers of {letter.dead_letter_id}", str(letter.kafka_headers))
    for who, body in received:
        problems += _leaks("an alert", orjson.dumps(body).decode())
    assert not problems, problems
    assert all(b"s3cr3t" not in base64.b64decode(v) for x in letters for _, v in x.headers)
    assert {x.error for x in letters} >= {"MalformedItem: messages[1].timestamp: ValueError"}
