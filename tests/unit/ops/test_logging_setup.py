"""Bounded logging: repeated records are limited per (logger, template), a broker outage
is told as state changes and periodic summaries. Driven by a fake clock."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from runtime import logging_setup
from runtime.logging_setup import BrokerWatch, QuietFilter, RateLimiter, configure_logging


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_the_first_records_of_a_burst_pass_then_the_rest_are_counted() -> None:
    limiter = RateLimiter(burst=3, window=30)
    admitted = [limiter.admit("k", 100 + i * 0.01) for i in range(1000)]
    assert admitted[:3] == [True] * 3 and not any(admitted[3:])
    assert limiter.admit("other", 110), "keys are limited apart"
    assert limiter.summaries(129) == [], "no summary before the window ends"
    [summary] = limiter.summaries(130)
    assert (summary.key, summary.count, summary.seconds) == ("k", 997, 30)
    assert limiter.summaries(131) == [], "a window is summarised once"
    assert limiter.admit("k", 131), "a new window starts with a new burst"


def test_a_window_that_ends_on_a_new_record_is_still_summarised() -> None:
    limiter = RateLimiter(burst=1, window=10)
    assert limiter.admit("k", 0)
    assert not limiter.admit("k", 1)
    assert limiter.admit("k", 12)  # the old window ended: its count waits for the next summaries()
    assert [(s.key, s.count) for s in limiter.summaries(12)] == [("k", 1)]


def test_final_summaries_report_open_windows() -> None:
    limiter = RateLimiter(burst=1, window=30)
    limiter.admit("k", 0)
    limiter.admit("k", 1)
    limiter.admit("quiet", 1)
    [summary] = limiter.summaries(5, final=True)
    assert (summary.key, summary.count, summary.seconds) == ("k", 1, 5)


def test_broker_watch_says_the_outage_once_then_summaries_then_the_recovery() -> None:
    watch = BrokerWatch(summary_every=30)
    assert watch.contact(0) is None, "reachable already: nothing to say"
    first = watch.error(10, "aiokafka: Unable connect to node with id 1")
    assert first is not None and first.startswith("broker unreachable: aiokafka: Unable connect")
    assert all(watch.error(10 + i * 0.015, "again") is None for i in range(2000))  # until 40 s
    assert watch.tick(39) is None
    assert watch.tick(40) == "broker still unreachable for 30s; 2000 connection errors suppressed in the last 30s"
    assert watch.tick(55) is None, "at most one summary per 30 s"
    watch.error(56, "again")
    assert watch.tick(70) == (
        "broker still unreachable for 60s; 1 connection error suppressed in the last 30s (the last 14s ago)"
    ), "an error long before the summary is dated: the client may just have stopped trying"
    assert watch.tick(100) is None, "no errors since the last summary: nothing new"
    assert watch.contact(105) == "broker reachable again after 95s; 2001 connection errors suppressed"
    assert not watch.unreachable and watch.tick(200) is None
    assert watch.error(300, "down again") is not None, "a new outage is said again"


def _record(name: str, level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args or None, None)


@pytest.fixture
def quiet() -> tuple[QuietFilter, list[logging.LogRecord], Clock]:
    written: list[logging.LogRecord] = []
    clock = Clock()
    f = QuietFilter(emit=written.append, level=logging.INFO, clock=clock, burst=2, window=30, broker_summary_every=30)
    return f, written, clock


def _lines(written: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in written]


def test_filter_folds_an_outage_of_aiokafka_errors_into_three_lines(quiet) -> None:  # type: ignore[no-untyped-def]
    f, written, clock = quiet
    errors = [
        ("aiokafka", "Unable connect to node with id %s: %s", 1, "[Errno 111] Connection refused"),
        ("aiokafka", "Unable to update metadata from %s", [1]),
        ("aiokafka.consumer.fetcher", "Failed fetch messages from %s: %s", 1, "NodeNotReadyError: not ready"),
        ("aiokafka.consumer.group_coordinator", "Group Coordinator Request failed: %s", "NodeNotReadyError"),
        ("aiokafka.consumer.group_coordinator", "Marking the coordinator dead (node %s)for group %s.", 1, "g"),
    ]
    passed = 0
    for i in range(3000):
        clock.now = 500 + i * 0.015  # 45 s of errors, ~70 a second
        name, msg, *args = errors[i % len(errors)]
        level = logging.WARNING if "Marking" in msg else logging.ERROR
        passed += f.filter(_record(name, level, msg, *args))
        f.tick()
    assert passed == 0
    clock.now += 1
    f.filter(_record("aiokafka.cluster", logging.DEBUG, "Updated cluster metadata to %s", "ClusterMetadata(...)"))
    lines = _lines(written)
    assert len(lines) == 3, lines
    assert lines[0].startswith("broker unreachable: aiokafka: Unable connect to node with id 1")
    assert lines[1] == "broker still unreachable for 30s; 2000 connection errors suppressed in the last 30s"
    assert lines[2] == "broker reachable again after 46s; 2999 connection errors suppressed"
    assert {r.name for r in written} == {"msgmem.broker"}


def test_filter_limits_any_other_repeated_record_and_summarises_it(quiet) -> None:  # type: ignore[no-untyped-def]
    f, written, clock = quiet
    kept = [f.filter(_record("projections.consumer", logging.WARNING, "retrying batch %d", i)) for i in range(50)]
    assert kept == [True, True] + [False] * 48
    assert f.filter(_record("projections.consumer", logging.INFO, "projector started: %s", "x")), "other template"
    assert f.filter(_record("other.logger", logging.WARNING, "retrying batch %d", 1)), "other logger"
    clock.now += 30
    f.tick()
    assert _lines(written) == ["suppressed 48 more like this from projections.consumer in 30s: retrying batch %d"]
    assert written[0].levelno == logging.WARNING
    assert f.filter(_record("projections.consumer", logging.WARNING, "retrying batch %d", 99)), "new window"


def test_filter_drops_records_below_its_level_but_reads_broker_contact(quiet) -> None:  # type: ignore[no-untyped-def]
    f, written, clock = quiet
    assert not f.filter(_record("app", logging.DEBUG, "detail"))
    f.filter(_record("aiokafka", logging.ERROR, "Unable connect to node with id %s: %s", 1, "refused"))
    clock.now += 5
    assert not f.filter(_record("aiokafka.cluster", logging.DEBUG, "Updated cluster metadata to %s", "x"))
    assert _lines(written)[-1] == "broker reachable again after 5s; 0 connection errors suppressed"


def test_other_aiokafka_errors_are_not_taken_for_an_outage(quiet) -> None:  # type: ignore[no-untyped-def]
    f, written, _clock = quiet
    assert f.filter(_record("aiokafka.cluster", logging.ERROR, "Topic %s not found in cluster metadata", "wa.raw"))
    assert written == [] and not f.broker.unreachable


def test_coordinator_trouble_is_counted_during_an_outage_but_does_not_start_one(quiet) -> None:  # type: ignore[no-untyped-def]
    f, written, clock = quiet
    dead = ("aiokafka.consumer.group_coordinator", logging.WARNING, "Marking the coordinator dead (node %s)for group %s.", 1, "g")
    assert f.filter(_record(*dead)), "a coordinator moving while the broker is up: an ordinary record"
    assert written == [] and not f.broker.unreachable
    f.filter(_record("aiokafka", logging.ERROR, "Unable connect to node with id %s: %s", 1, "[Errno 111] Connection refused"))
    assert not f.filter(_record(*dead))
    clock.now += 3
    f.filter(_record("aiokafka.consumer.group_coordinator", logging.INFO, "Discovered coordinator %s for group %s", 1, "g"))
    assert _lines(written)[-1] == "broker reachable again after 3s; 1 connection error suppressed"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    cluster_level = logging.getLogger("aiokafka.cluster").level
    yield
    if logging_setup._installed is not None:
        root.removeHandler(logging_setup._installed[0])
        logging_setup._installed = None
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("aiokafka.cluster").setLevel(cluster_level)


def test_configure_logging_installs_one_quiet_handler_and_keeps_others(restore_logging: None) -> None:
    other = logging.NullHandler()
    logging.getLogger().addHandler(other)
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", stream=first, ticker=False)
    configure_logging("info", stream=second, ticker=False)
    root = logging.getLogger()
    assert other in root.handlers
    assert sum(any(isinstance(f, QuietFilter) for f in h.filters) for h in root.handlers) == 1
    for i in range(10):
        logging.getLogger("msgmem.test").warning("same %d", i)
    logging.getLogger("aiokafka").error("Unable connect to node with id %s: %s", 1, "refused")
    logging.getLogger("aiokafka.cluster").debug("Updated cluster metadata to %s", "x")
    assert first.getvalue() == ""
    out = second.getvalue().splitlines()
    assert len(out) == 5 + 2, out
    assert out[0].endswith(" WARNING msgmem.test: same 0")
    assert " WARNING msgmem.broker: broker unreachable: aiokafka: Unable connect" in out[5]
    assert " WARNING msgmem.broker: broker reachable again after " in out[6]
    assert root.level == logging.INFO


def test_an_acknowledged_write_is_broker_contact(quiet) -> None:  # type: ignore[no-untyped-def]
    """A producer that reconnects to the same broker updates no metadata; ingest says the
    broker answered through ``broker_answered`` instead, and the outage ends there."""
    f, written, clock = quiet
    f.filter(_record("aiokafka", logging.ERROR, "Unable connect to node with id %s: %s", 1, "refused"))
    clock.now += 7
    assert not f.filter(_record("msgmem.broker.contact", logging.DEBUG, "the broker acknowledged a write"))
    assert _lines(written)[-1] == "broker reachable again after 7s; 0 connection errors suppressed"
