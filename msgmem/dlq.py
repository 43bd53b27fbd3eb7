"""`msgmem dlq list|show|retry`: working the dead-letter topic.

The topic is read whole and folded: a letter is open until a ``DeadLetterRetried`` marker
with its id follows. Retry runs the stage's own handler on the original record (key,
value, headers as read), writes its outputs with the project's durable producer, then the
marker; a letter that fails again stays open and its new error is reported.

A stage that dead-letters items of a record (normalize: one letter per bad message of a
delivery, ``id#part``) answers a retry with outputs, not an exception: the retry failed
again when those outputs hold a letter with the retried letter's own id. Its other
letters (the record's other bad items) are written as the live stage would; a letter
for the whole record retried after the stage learnt to isolate items closes, and its
bad items get letters of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import TopicPartition

from contracts import deadletter, processes
from contracts.deadletter import DeadLettered, DeadLetterRetried
from contracts.errors import describe_error
from contracts.settings import Settings
from runtime.kafka import end_offsets, read_range
from msgmem.stages import open_handler
from streams.common.outputs import KafkaOutputs
from streams.common.records import InputRecord, Output


@dataclass
class Letter:
    letter: DeadLettered
    retried: DeadLetterRetried | None = None
    failures: int = 1  # how many times this input was dead-lettered

    @property
    def open(self) -> bool:
        return self.retried is None

    @property
    def age_seconds(self) -> float:
        return (datetime.now(UTC) - self.letter.failed_at).total_seconds()


def fold(events: Sequence[DeadLettered | DeadLetterRetried]) -> dict[str, Letter]:
    """Pure: the latest state of every letter, by id, in topic order."""
    letters: dict[str, Letter] = {}
    for event in events:
        if isinstance(event, DeadLettered):
            previous = letters.get(event.dead_letter_id)
            letters[event.dead_letter_id] = Letter(event, failures=(previous.failures + 1) if previous else 1)
        elif event.dead_letter_id in letters:
            letters[event.dead_letter_id].retried = event
    return letters


async def load(settings: Settings) -> dict[str, Letter]:
    records = await read_range(settings, deadletter.TOPIC, {}, await end_offsets(settings, deadletter.TOPIC))
    events = []
    for record in records:
        try:
            events.append(deadletter.decode(record.value))
        except ValueError:
            continue  # not ours (someone wrote to the topic by hand): nothing to retry
    return fold(events)


def select(letters: dict[str, Letter], *, stage: str | None, ids: Sequence[str], everything: bool) -> list[Letter]:
    chosen = [letters[i] for i in ids if i in letters] if ids else list(letters.values()) if everything else []
    return [x for x in chosen if x.open and (stage is None or _same_stage(x.letter.stage, stage))]


def _same_stage(written: str, wanted: str) -> bool:
    """A letter written under a process's former name (``embeddings-projector``) is still its."""
    try:
        return processes.by_name(wanted).answers_to(written)
    except KeyError:
        return written == wanted


@dataclass(frozen=True)
class RetryResult:
    dead_letter_id: str
    ok: bool
    detail: str


async def retry(settings: Settings, letters: Sequence[Letter]) -> list[RetryResult]:
    results: list[RetryResult] = []
    if not letters:
        return results
    writer = await KafkaOutputs.start(settings)
    try:
        for item in letters:
            results.append(await _retry_one(settings, item, writer))
    finally:
        await writer.stop()
    return results


async def original_record(settings: Settings, letter: DeadLettered) -> InputRecord:
    """The failed input: from the letter, or, when its value was too large to keep there, read
    again from its topic at its coordinates (``LookupError`` once retention removed it)."""
    if not letter.value_omitted:
        return InputRecord(
            topic=letter.topic, partition=letter.partition, offset=letter.offset,
            key=letter.key, value=letter.value, headers=tuple(letter.kafka_headers),
        )
    tp = TopicPartition(letter.topic, letter.partition)
    found = [r for r in await read_range(settings, letter.topic, {tp: letter.offset}, {tp: letter.offset + 1})
             if r.offset == letter.offset]  # fmt: skip
    if not found:
        raise LookupError(f"{letter.topic}[{letter.partition}]@{letter.offset} is no longer on the topic")
    rec = found[0]
    return InputRecord(
        topic=rec.topic, partition=rec.partition, offset=rec.offset, key=rec.key, value=rec.value,
        headers=tuple(rec.headers or ()),
    )


async def _retry_one(settings: Settings, item: Letter, writer: KafkaOutputs) -> RetryResult:
    """Run the stage on the original record; write its outputs and the marker together."""
    letter = item.letter
    try:
        record = await original_record(settings, letter)
    except LookupError as exc:
        return RetryResult(letter.dead_letter_id, False, str(exc))
    try:
        async with open_handler(letter.stage, settings) as handler:
            outputs = await handler(record)
    except Exception as exc:  # noqa: BLE001 - reported; the letter stays open
        return RetryResult(letter.dead_letter_id, False, describe_error(exc))
    letters = [o for o in outputs if o.topic == deadletter.TOPIC]
    again = next((x for x in map(_letter_in, letters) if x and x.dead_letter_id == letter.dead_letter_id), None)
    if again is not None:  # this very item failed again: nothing written, the letter stays open
        return RetryResult(letter.dead_letter_id, False, again.summary)
    written = len(outputs) - len(letters)
    marker = DeadLetterRetried(
        dead_letter_id=letter.dead_letter_id, stage=letter.stage, outputs=written, retried_at=datetime.now(UTC),
    )
    await writer.write([*outputs, Output(deadletter.TOPIC, letter.stage.encode(), marker.encode())])
    detail = f"{written} output(s) written" + (f", {len(letters)} other part(s) dead-lettered" if letters else "")
    return RetryResult(letter.dead_letter_id, True, detail)


def _letter_in(output: Output) -> DeadLettered | None:
    try:
        event = deadletter.decode(output.value)
    except ValueError:
        return None
    return event if isinstance(event, DeadLettered) else None
