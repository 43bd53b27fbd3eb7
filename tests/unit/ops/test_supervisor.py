"""The restart policy of `msgmem dev`: exponential backoff, capped, reset after a long run;
and the supervisor that applies it, driven by a fake clock and fake processes."""

from __future__ import annotations

import signal

from msgmem.supervisor import Backoff, RestartPolicy, Supervisor, describe_exit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeProcess:
    pids = iter(range(100, 10_000))

    def __init__(self, name: str) -> None:
        self.name = name
        self.pid: int | None = next(self.pids)
        self.returncode: int | None = None
        self.ready = False

    def running(self) -> bool:
        return self.returncode is None

    def is_ready(self) -> bool:
        return self.ready


def test_delays_double_from_one_second_up_to_thirty() -> None:
    policy = RestartPolicy(Backoff(first=1, factor=2, cap=30, reset_after=60))
    delays = []
    now = 0.0
    for _ in range(8):
        policy.started(now)
        now += 0.5  # crashes right away every time
        delays.append(policy.exited(now))
        now += delays[-1]
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]
    assert policy.restarts == 8


def test_a_child_that_stayed_up_long_enough_starts_the_series_again() -> None:
    policy = RestartPolicy(Backoff(first=1, factor=2, cap=30, reset_after=60))
    policy.started(0)
    assert policy.exited(1) == 1
    policy.started(2)
    assert policy.exited(3) == 2
    policy.started(5)
    assert policy.exited(5 + 59.9) == 4  # not quite long enough
    policy.started(70)
    assert policy.exited(70 + 60) == 1  # up for a minute: back to the first delay
    assert policy.restarts == 4


def test_a_failed_start_counts_as_a_crash() -> None:
    policy = RestartPolicy(Backoff(first=1, factor=2, cap=30, reset_after=60))
    policy.started(0)
    assert policy.exited(100) == 1
    assert policy.exited(101) == 2  # never started in between


def test_exit_descriptions() -> None:
    assert describe_exit(-signal.SIGKILL) == "signal SIGKILL"
    assert describe_exit(-signal.SIGSEGV) == "signal SIGSEGV"
    assert describe_exit(1) == "code 1"
    assert describe_exit(0) == "code 0"


def _supervised(clock: Clock) -> tuple[Supervisor, list[str], list[dict[str, int | None]], dict[str, list[FakeProcess]]]:
    said: list[str] = []
    changes: list[dict[str, int | None]] = []
    made: dict[str, list[FakeProcess]] = {"kafka": [], "normalize": []}

    def starter(name: str):  # type: ignore[no-untyped-def]
        def start() -> FakeProcess:
            made[name].append(FakeProcess(name))
            return made[name][-1]

        return start

    supervisor = Supervisor(say=said.append, on_change=changes.append, backoff=Backoff(), clock=clock)
    for name in made:
        supervisor.adopt(starter(name)(), starter(name))
    return supervisor, said, changes, made


def test_a_crashed_child_is_announced_then_restarted_after_its_delay() -> None:
    clock = Clock()
    supervisor, said, changes, made = _supervised(clock)
    first = made["normalize"][0]
    supervisor.tick()
    assert said == [] and changes == []

    first.returncode = -signal.SIGKILL
    supervisor.tick()
    assert said == ["normalize exited (signal SIGKILL); restarting in 1s (restart 1)"]
    supervisor.tick()
    assert len(said) == 1, "the exit is said once"

    clock.now += 0.9
    supervisor.tick()
    assert len(made["normalize"]) == 1, "not before its delay"
    clock.now += 0.1
    supervisor.tick()
    second = made["normalize"][1]
    assert changes == [{"kafka": made["kafka"][0].pid, "normalize": second.pid}]
    assert supervisor.pids()["normalize"] == second.pid != first.pid
    assert supervisor.processes() == [made["kafka"][0], second]

    clock.now += 2.5
    second.ready = True
    supervisor.tick()
    assert said[-1] == f"normalize is back (pid {second.pid}, ready 2.5s after its restart)"
    supervisor.tick()
    assert len(said) == 2


def test_repeated_crashes_back_off_and_a_long_run_resets_the_delay() -> None:
    clock = Clock()
    supervisor, said, _changes, made = _supervised(clock)
    for expected in (1, 2, 4):
        made["kafka"][-1].returncode = 1
        supervisor.tick()
        assert said[-1].startswith(f"kafka exited (code 1); restarting in {expected}s"), said[-1]
        clock.now += expected
        supervisor.tick()
    assert len(made["kafka"]) == 4

    clock.now += 61
    made["kafka"][-1].returncode = 137
    supervisor.tick()
    assert said[-1] == "kafka exited (code 137); restarting in 1s (restart 4)"
    assert len(made["normalize"]) == 1, "the other child is left alone"


def test_a_start_that_raises_is_retried_with_a_longer_delay() -> None:
    clock = Clock()
    said: list[str] = []
    attempts: list[int] = []

    def start() -> FakeProcess:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("port in use")
        return FakeProcess("postgres")

    supervisor = Supervisor(say=said.append, clock=clock)
    original = FakeProcess("postgres")
    supervisor.adopt(original, start)
    original.returncode = -signal.SIGKILL
    supervisor.tick()
    clock.now += 1
    supervisor.tick()
    assert said[-1] == "postgres could not start (port in use); retrying in 2s (restart 2)"
    assert supervisor.processes() == [original]
    clock.now += 2
    supervisor.tick()
    assert len(attempts) == 2 and supervisor.pids()["postgres"] != original.pid
