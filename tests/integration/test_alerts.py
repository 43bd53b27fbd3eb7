"""A new dead letter is announced on Telegram and a generic webhook (local fakes that speak
their protocol); retry markers are not; the alert never carries the dead input's bytes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from contracts import deadletter
from contracts.deadletter import DeadLettered, DeadLetterResolved, DeadLetterRetried
from contracts.settings import Settings
from msgmem.alerts import alert_text, run
from msgmem.localstack.http_server import serving
from runtime.kafka import make_producer
from tests.waiting import eventually

pytestmark = pytest.mark.integration


def fake_endpoints(received: list[tuple[str, dict]]) -> Starlette:  # type: ignore[type-arg]
    async def telegram(request: Request) -> JSONResponse:
        received.append((request.path_params["token"], await request.json()))
        return JSONResponse({"ok": True, "result": {"message_id": len(received)}})

    async def webhook(request: Request) -> JSONResponse:
        received.append(("webhook", await request.json()))
        return JSONResponse({"received": True})

    return Starlette(routes=[
        Route("/bot{token}/sendMessage", telegram, methods=["POST"]),
        Route("/hooks/dlq", webhook, methods=["POST"]),
    ])


async def test_new_dead_letters_are_alerted_once_each(settings: Settings) -> None:
    received: list[tuple[str, dict]] = []  # type: ignore[type-arg]
    secret_text = f"customer says {uuid.uuid4().hex}"
    letter = DeadLettered.of(
        "transcribe", topic="wa.media", partition=2, offset=41, key=b"chat", value=secret_text.encode(),
        headers=[], error=TimeoutError("openai timed out"), attempts=5,
    )
    markers = [
        DeadLetterRetried(dead_letter_id=letter.dead_letter_id, stage="transcribe", retried_by="dana",
                          retried_at=datetime.now(UTC)),
        DeadLetterResolved(dead_letter_id=letter.dead_letter_id, stage="transcribe", outputs=1,
                           resolved_at=datetime.now(UTC)),
    ]  # fmt: skip
    async with serving(fake_endpoints(received)) as url:
        cfg = settings.model_copy(update={
            "telegram_bot_token": SecretStr("123:abc"), "telegram_chat_id": "-100042",
            "telegram_api_url": url, "alert_webhook_url": f"{url}/hooks/dlq",
        })
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(run(cfg, stop, group=f"alerts-{uuid.uuid4().hex}", ready=ready))
        await asyncio.wait_for(ready.wait(), 60)
        producer = make_producer(settings)
        await producer.start()
        try:
            # Same key, same partition: the later letter proves the markers were read in between.
            later = DeadLettered.of("transcribe", topic="wa.media", partition=2, offset=42, key=b"chat",
                                    value=b"x", headers=[], error=ValueError("bad"), attempts=1)
            for event in (letter, *markers, later):
                await producer.send_and_wait(deadletter.TOPIC, event.encode(), key=b"transcribe")
        finally:
            await producer.stop()
        await eventually(lambda: asyncio.sleep(0, result=len(received) >= 4))
        stop.set()
        assert await task == 2  # the two letters; the retry marker is not an alert

    telegram = [body for who, body in received if who == "123:abc"]
    hooks = [body for who, body in received if who == "webhook"]
    assert len(telegram) == 2 and len(hooks) == 2
    assert telegram[0] == {"chat_id": "-100042", "text": alert_text(letter)}
    assert "transcribe" in telegram[0]["text"] and "TimeoutError" in telegram[0]["text"]
    assert hooks[0]["dead_letter_id"] == letter.dead_letter_id and hooks[0]["stage"] == "transcribe"
    assert all(secret_text not in str(body) for _, body in received)
