"""Alerts on new dead letters: ``python -m msgmem.alerts``.

Tails wa.deadletter in its own consumer group and posts one short message per new letter
to Telegram (TELEGRAM_BOT_TOKEN + TELEGRAM_CHAT_ID) and/or a generic webhook
(ALERT_WEBHOOK_URL, JSON body). Retry and resolution markers are not alerted; a retry that
failed again logs a new letter, which is. With neither configured it
consumes and counts, so it can run everywhere. The message carries the stage, error and
coordinates — never the dead input's bytes, which may hold a customer's text; the error is
``contracts.errors.describe_error``'s (types and field paths). The Telegram URL holds the bot
token, so httpx's request lines are kept out of the log (``runtime.log_privacy``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

import httpx

from contracts import deadletter
from contracts.deadletter import DeadLettered
from contracts.settings import Settings
from runtime.kafka import make_consumer
from runtime.logging_setup import configure_logging

log = logging.getLogger(__name__)

def alert_text(letter: DeadLettered) -> str:
    """Pure: the human line for one dead letter."""
    return (
        f"Message Memory: {letter.stage} dead-lettered {letter.topic}[{letter.partition}]@{letter.offset} "
        f"after {letter.attempts} attempt(s): {letter.summary[:300]} "
        f"(msgmem dlq show --id {letter.dead_letter_id})"
    )


@dataclass
class Notifier:
    client: httpx.AsyncClient
    telegram_url: str | None
    telegram_chat_id: str | None
    webhook_url: str | None

    @classmethod
    def from_settings(cls, settings: Settings, client: httpx.AsyncClient) -> "Notifier":
        token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else None
        url = f"{settings.telegram_api_url.rstrip('/')}/bot{token}/sendMessage" if token else None
        return cls(client, url, settings.telegram_chat_id, settings.alert_webhook_url)

    @property
    def configured(self) -> bool:
        return bool((self.telegram_url and self.telegram_chat_id) or self.webhook_url)

    async def notify(self, letter: DeadLettered) -> None:
        text = alert_text(letter)
        if self.telegram_url and self.telegram_chat_id:
            await self._post(self.telegram_url, {"chat_id": self.telegram_chat_id, "text": text}, "telegram")
        if self.webhook_url:
            body = {"text": text, **letter.model_dump(mode="json", exclude={"value_b64", "key_b64", "headers"})}
            await self._post(self.webhook_url, body, "webhook")

    async def _post(self, url: str, body: dict[str, object], channel: str) -> None:
        # An alert channel that is down must not stop the pipeline's alerts elsewhere: log, go on.
        for attempt in range(3):
            try:
                response = await self.client.post(url, json=body, timeout=10)
                if response.status_code < 500 and response.status_code != 429:
                    if response.status_code >= 400:
                        log.warning("%s alert refused: %s", channel, response.status_code)
                    return
            except httpx.HTTPError as exc:
                log.warning("%s alert failed (%s)", channel, type(exc).__name__)
            await asyncio.sleep(2**attempt)


async def run(
    settings: Settings, stop: asyncio.Event, *, group: str | None = None, ready: asyncio.Event | None = None
) -> int:
    """Alert on every new letter until ``stop``; return how many were alerted. ``ready`` is
    set once the group owns its partitions and knows where it starts."""
    # Its own group (KAFKA_GROUP_PREFIX + alerts): it reads wa.deadletter from the end, for new letters only.
    group = group or settings.consumer_group("alerts")
    consumer = make_consumer(settings, deadletter.TOPIC, group_id=group, auto_offset_reset="latest")
    alerted = 0
    async with httpx.AsyncClient() as client:
        notifier = Notifier.from_settings(settings, client)
        await consumer.start()
        try:
            while not consumer.assignment() and not stop.is_set():
                await consumer.getmany(timeout_ms=200)
            for tp in consumer.assignment():
                await consumer.position(tp)
            if ready is not None:
                ready.set()
            log.info("alerts watching %s (%s)", deadletter.TOPIC, "configured" if notifier.configured else "no channel set")
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        try:
                            event = deadletter.decode(record.value)
                        except ValueError:
                            continue
                        if isinstance(event, DeadLettered) and notifier.configured:
                            await notifier.notify(event)
                            alerted += 1
                if batch:
                    await consumer.commit()
        finally:
            await consumer.stop()
    return alerted


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(settings, stop)

    asyncio.run(serve())


if __name__ == "__main__":
    main()
