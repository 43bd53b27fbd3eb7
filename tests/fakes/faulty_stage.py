"""A stage for the delivery tests: ``python -m tests.fakes.faulty_stage``.

It runs the project's own Faust wiring (``attach_stage``, ``StageRunner``, manual acks) over
``FAULTY_INPUT``, echoing each input to ``FAULTY_OUTPUT``, with a writer that fails as real
ones can: every ``FAULTY_FAIL_EVERY``-th batch writes half its groups and then raises, as a
bug or an unexpected client error would in the middle of a batch. Whatever the faults, every
input must reach the output topic.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import faust

from contracts.settings import Settings
from streams.common.faust_app import StoppableWriter, start_writer, attach_stage, make_app, run_worker
from streams.common.outputs import RecordTooLarge
from streams.common.records import InputRecord, Output
from streams.common.runner import RetryPolicy


class FaultyWriter:
    def __init__(self, inner: StoppableWriter, fail_every: int) -> None:
        self._inner = inner
        self._fail_every = fail_every
        self.calls = 0

    async def write_groups(self, groups: Sequence[Sequence[Output]]) -> dict[int, RecordTooLarge]:
        self.calls += 1
        if self._fail_every and self.calls % self._fail_every == 0:
            await self._inner.write_groups(groups[: len(groups) // 2])
            raise RuntimeError("injected fault after a partial write")
        return await self._inner.write_groups(groups)

    async def write(self, outputs: Sequence[Output]) -> None:
        await self._inner.write(outputs)

    async def stop(self) -> None:
        await self._inner.stop()


def main() -> None:
    settings = Settings()
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stage, source, target = os.environ["FAULTY_STAGE"], os.environ["FAULTY_INPUT"], os.environ["FAULTY_OUTPUT"]
    fail_every = int(os.environ.get("FAULTY_FAIL_EVERY", "0"))

    async def echo(record: InputRecord) -> list[Output]:
        return [Output(target, record.key or b"", record.value)]

    async def writer(s: Settings) -> StoppableWriter:
        return FaultyWriter(await start_writer(s), fail_every)

    app: faust.App = make_app(stage, settings)
    attach_stage(
        app, settings, stage=stage, input_topics=(source,), handler_factory=lambda: echo,
        policy=RetryPolicy(attempts=1), batch_size=int(os.environ.get("FAULTY_BATCH", "50")), within=0.05,
        writer_factory=writer,
    )
    run_worker(app, settings)


if __name__ == "__main__":
    main()
