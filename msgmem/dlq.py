"""`msgmem dlq list|show|retry`: working the dead-letter topic.

The topic is read whole and folded: a letter's state is that of its latest event
(``contracts.deadletter.state_after``): open after a ``DeadLettered``, retried after a
``DeadLetterRetried``, resolved after a ``DeadLetterResolved``. The dead_letters projector
folds the same events into a table (``projections.deadletters``).

Retry logs who ran it first (a ``DeadLetterRetried``: ``--by``, else $USER, else "msgmem"),
then runs the stage's own handler on the original record (key, value, headers as read) and
logs the outcome with the project's durable producer: the outputs and a
``DeadLetterResolved`` together when it went through, or, when it failed again, the letter
the stage would have written (same id, so the letter is open again, one failure more). A
record no longer on its topic is not run, and nothing is logged.

A stage that dead-letters items of a record (normalize: one letter per bad message of a
delivery, ``id#part``) answers a retry with outputs, not an exception: the retry failed
again when those outputs hold a letter with the retried letter's own id, and they are
written as the live stage would. Its other letters (the record's other bad items) are
written either way; a letter for the whole record retried after the stage learnt to
isolate items resolves, and its bad items get letters of their own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import TopicPartition

from contracts import deadletter, processes
from contracts.deadletter import (
    AnyLetterEvent, DeadLettered, DeadLetterResolved, DeadLetterRetried, LetterState, state_after,
)  # fmt: skip
from contracts.settings import Settings
from runtime.kafka import end_offsets, read_range
from msgmem.stages import open_handler, stage_named
from streams.common.outputs import KafkaOutputs
from streams.common.records import InputRecord, Output

DEFAULT_OPERATOR = "msgmem"


@dataclass
class Letter:
    letter: DeadLettered  # the latest letter with this id
    state: LetterState = "open"
    retried: DeadLetterRetried | None = None  # the latest retry
    resolved: DeadLetterResolved | None = None  # the latest resolution
    failures: int = 1  # how many times this input was dead-lettered

    @property
    def open(self) -> bool:
        return self.state == "open"

    @property
    def age_seconds(self) -> float:
        return (datetime.now(UTC) - self.letter.failed_at).total_seconds()


def fold(events: Sequence[AnyLetterEvent]) -> dict[str, Letter]:
    """Pure: the latest state of every letter, by id, in topic order."""
    letters: dict[str, Letter] = {}
    for event in events:
        previous = letters.get(event.dead_letter_id)
        if isinstance(event, DeadLettered):
            letters[event.dead_letter_id] = Letter(
                event, failures=previous.failures + 1 if previous else 1,
                retried=previous.retried if previous else None, resolved=previous.resolved if previous else None,
            )  # fmt: skip
            continue
        if previous is None:
            continue  # a marker without its letter (written by hand, or the letter is past retention)
        if isinstance(event, DeadLetterRetried):
            previous.retried = event
        else:
            previous.resolved = event
        previous.state = state_after(event)
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
    """The letters to retry: open ones, and retried ones whose outcome never came (the retry died)."""
    chosen = [letters[i] for i in ids if i in letters] if ids else list(letters.values()) if everything else []
    return [x for x in chosen if x.state != "resolved" and (stage is None or _same_stage(x.letter.stage, stage))]


def operator(name: str | None) -> str:
    """Who a retry is logged as: ``--by``, else $USER, else "msgmem"."""
    return (name or os.environ.get("USER") or DEFAULT_OPERATOR).strip()[:200] or DEFAULT_OPERATOR


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


async def retry(settings: Settings, letters: Sequence[Letter], *, by: str = DEFAULT_OPERATOR) -> list[RetryResult]:
    results: list[RetryResult] = []
    if not letters:
        return results
    writer = await KafkaOutputs.start(settings)
    try:
        for item in letters:
            results.append(await _retry_one(settings, item, writer, by))
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


async def _retry_one(settings: Settings, item: Letter, writer: KafkaOutputs, by: str) -> RetryResult:
    """Log the retry, run the stage on the original record, log the outcome. A stage this command
    cannot run, or a record gone from its topic, is reported and logs nothing."""
    letter = item.letter
    try:
        stage_named(letter.stage)
    except KeyError as unknown:
        return RetryResult(letter.dead_letter_id, False, str(unknown.args[0]))
    try:
        record = await original_record(settings, letter)
    except LookupError as exc:
        return RetryResult(letter.dead_letter_id, False, str(exc))
    retried = DeadLetterRetried(
        dead_letter_id=letter.dead_letter_id, stage=letter.stage, retried_by=by, retried_at=datetime.now(UTC)
    )
    await writer.write([_marker(letter, retried)])
    try:
        async with open_handler(letter.stage, settings) as handler:
            outputs = await handler(record)
    except Exception as exc:  # noqa: BLE001 - the stage failed again: logged as its letter, reported
        again = DeadLettered.of(
            letter.stage, topic=letter.topic, partition=letter.partition, offset=letter.offset, key=record.key,
            value=record.value, headers=record.headers, error=exc, attempts=1, part=letter.part,
        )  # fmt: skip
        await writer.write([_marker(letter, again.without_value() if letter.value_omitted else again)])
        return RetryResult(letter.dead_letter_id, False, again.summary)
    letters = [o for o in outputs if o.topic == deadletter.TOPIC]
    again = next((x for x in map(_letter_in, letters) if x and x.dead_letter_id == letter.dead_letter_id), None)
    if again is not None:  # this very item failed again: written as the live stage would, the letter is open
        await writer.write(outputs)
        return RetryResult(letter.dead_letter_id, False, again.summary)
    written = len(outputs) - len(letters)
    resolved = DeadLetterResolved(
        dead_letter_id=letter.dead_letter_id, stage=letter.stage, outputs=written, resolved_at=datetime.now(UTC)
    )
    await writer.write([*outputs, _marker(letter, resolved)])
    detail = f"{written} output(s) written" + (f", {len(letters)} other part(s) dead-lettered" if letters else "")
    return RetryResult(letter.dead_letter_id, True, detail)


def _marker(letter: DeadLettered, event: AnyLetterEvent) -> Output:
    """An event about ``letter`` on wa.deadletter, keyed by its stage like the letter itself."""
    return Output(deadletter.TOPIC, letter.stage.encode(), event.encode())


def _letter_in(output: Output) -> DeadLettered | None:
    try:
        event = deadletter.decode(output.value)
    except ValueError:
        return None
    return event if isinstance(event, DeadLettered) else None
