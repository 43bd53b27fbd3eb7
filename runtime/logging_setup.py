"""Logging for every Message Memory process, with a bound on repeated lines.

``configure_logging(level)`` is the one set-up each process calls at start. It logs to
stderr in one format and installs ``QuietFilter`` on that handler, which keeps a broker
outage or an error loop from writing thousands of lines a second:

* Connection errors from the Kafka clients (aiokafka, and Faust/mode around it) are folded
  into the broker's state: one line when the broker becomes unreachable, a summary every
  ``broker_summary_every`` seconds while it stays so ("still unreachable for 45s; 1,234
  connection errors suppressed"), and one line when it is reachable again. aiokafka says
  the broker answered by logging, at DEBUG, each metadata update it receives; the filter
  reads those records and drops them.
* Any other record is limited per (logger, message template, level): the first ``burst``
  in a window of ``window`` seconds pass, the rest are counted, and one summary line per
  window gives the count.

``RateLimiter`` and ``BrokerWatch`` are the pure parts: they are told the time and return
the lines to write. ``QuietFilter`` joins them to ``logging``; a daemon thread ticks it
every second so that summaries come out even when the records stop.

Lines are written by ``runtime.log_privacy.PrivateFormatter`` (no exception message, no
credential) and HTTP clients are held at WARNING (their request lines carry URLs with tokens).
"""

from __future__ import annotations

import atexit
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import IO

from contracts.settings import Settings
from runtime.log_privacy import PrivateFormatter, quiet_http_clients

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Set on the records this module makes, so its own filter lets them through.
_OURS = "msgmem_summary"

_KAFKA_LOGGERS = ("aiokafka", "faust", "mode")
#: What a Kafka client says when it cannot reach the broker (exception names and OS errors).
_BROKER_DOWN = re.compile(
    r"Unable connect|Unable to (?:update|request) metadata|Unable to bootstrap|NodeNotReady|KafkaConnectionError"
    r"|Connection refused|Connect call failed|Connection reset|RequestTimedOut|KafkaTimeoutError",
    re.IGNORECASE,
)
#: What follows from it, but is also said while the broker is up (a coordinator moving or
#: starting, a leader elected): counted while the broker is unreachable, never a reason to
#: say it is.
_BROKER_TROUBLE = re.compile(
    r"coordinator dead|is either not started or not valid|CoordinatorNotAvailable|NotCoordinator"
    r"|NotLeaderForPartition|LeaderNotAvailable",
    re.IGNORECASE,
)


def _seconds(value: float) -> str:
    value = int(round(value))
    return f"{value}s" if value < 120 else f"{value // 60}m{value % 60:02d}s"


@dataclass
class _Window:
    start: float
    passed: int = 0
    suppressed: int = 0


@dataclass(frozen=True)
class Suppressed:
    """``count`` records like ``key`` were dropped in the ``seconds`` before the summary."""

    key: Hashable
    count: int
    seconds: float


class RateLimiter:
    """Admits the first ``burst`` records per key in each window of ``window`` seconds. Pure."""

    def __init__(self, *, burst: int = 5, window: float = 30.0) -> None:
        self.burst = burst
        self.window = window
        self._windows: dict[Hashable, _Window] = {}
        self._ended: list[Suppressed] = []

    def admit(self, key: Hashable, now: float) -> bool:
        w = self._windows.get(key)
        if w is not None and now - w.start >= self.window:
            self._close(key, w, now)
            w = None
        if w is None:
            w = self._windows[key] = _Window(now)
        if w.passed < self.burst:
            w.passed += 1
            return True
        w.suppressed += 1
        return False

    def summaries(self, now: float, *, final: bool = False) -> list[Suppressed]:
        """The counts of the windows that have ended (all of them with ``final``) and dropped
        something; each window is reported once."""
        for key, w in list(self._windows.items()):
            if final or now - w.start >= self.window:
                self._close(key, w, now)
        ended, self._ended = self._ended, []
        return ended

    def _close(self, key: Hashable, w: _Window, now: float) -> None:
        del self._windows[key]
        if w.suppressed:
            self._ended.append(Suppressed(key, w.suppressed, min(now - w.start, self.window)))


def _errors(n: int) -> str:
    return f"{n} connection error{'' if n == 1 else 's'}"


@dataclass
class BrokerWatch:
    """The broker's state as the client's log records tell it, and the lines that say it. Pure.

    Only a record of the broker answering ends an outage; a client with nothing to send
    may not try again for minutes, so a summary also says how long ago the last error was
    when that is more than ``fresh`` seconds.
    """

    summary_every: float = 30.0
    fresh: float = 5.0
    down_since: float | None = None
    suppressed: int = 0
    _last_error: float = 0.0
    _summary_at: float = 0.0
    _summarised: int = field(default=0, repr=False)

    @property
    def unreachable(self) -> bool:
        return self.down_since is not None

    def error(self, now: float, text: str) -> str | None:
        """A connection error: the line to write when it changes the state, else None."""
        self._last_error = now
        if self.down_since is None:
            self.down_since = self._summary_at = now
            self.suppressed = self._summarised = 0
            return (
                f"broker unreachable: {text}; further connection errors are counted, "
                f"with a summary every {_seconds(self.summary_every)}"
            )
        self.suppressed += 1
        return None

    def contact(self, now: float) -> str | None:
        """The broker answered: the line to write when it had been unreachable, else None."""
        if self.down_since is None:
            return None
        line = f"broker reachable again after {_seconds(now - self.down_since)}; {_errors(self.suppressed)} suppressed"
        self.down_since = None
        return line

    def tick(self, now: float) -> str | None:
        """A summary, at most every ``summary_every`` seconds, while errors keep coming."""
        if self.down_since is None or now - self._summary_at < self.summary_every:
            return None
        new = self.suppressed - self._summarised
        self._summary_at, self._summarised = now, self.suppressed
        if not new:
            return None  # nothing tried since the last summary: nothing new to say
        quiet = now - self._last_error
        last = f" (the last {_seconds(quiet)} ago)" if quiet > self.fresh else ""
        return (
            f"broker still unreachable for {_seconds(now - self.down_since)}; "
            f"{_errors(new)} suppressed in the last {_seconds(self.summary_every)}{last}"
        )


def broker_error(record: logging.LogRecord) -> str | None:
    """``"down"`` for a Kafka client's record saying the broker cannot be reached, ``"trouble"``
    for one that follows from that but also happens while it is up, else None."""
    if record.levelno < logging.WARNING or record.name.split(".", 1)[0] not in _KAFKA_LOGGERS:
        return None
    text = record.getMessage()
    if _BROKER_DOWN.search(text):
        return "down"
    if _BROKER_TROUBLE.search(text):
        return "trouble"
    return None


_CONTACT_LOGGER = "msgmem.broker.contact"


def broker_answered() -> None:
    """Tell the BrokerWatch that the broker acknowledged something. A producer that reconnects
    to the same broker updates no metadata, so without this ingest never said the broker was
    back. A DEBUG record: read by the filter, never printed."""
    logging.getLogger(_CONTACT_LOGGER).debug("the broker acknowledged a write")


def is_broker_contact(record: logging.LogRecord) -> bool:
    """A record that shows the broker answering: a metadata update (DEBUG), a coordinator
    found, an acknowledged write (``broker_answered``)."""
    if record.name == _CONTACT_LOGGER:
        return True
    msg = record.msg if isinstance(record.msg, str) else ""
    if record.name == "aiokafka.cluster":
        return msg.startswith("Updated cluster metadata")
    if record.name.startswith("aiokafka.consumer.group_coordinator"):
        return msg.startswith("Discovered coordinator")
    return False


class QuietFilter(logging.Filter):
    """A handler filter applying ``BrokerWatch`` and ``RateLimiter`` to every record.

    ``emit`` writes a record this filter made (a state change, a summary); ``level`` is the
    configured level: records below it are read for broker contact and dropped.
    """

    def __init__(
        self, *, emit: Callable[[logging.LogRecord], object], level: int = logging.INFO,
        clock: Callable[[], float] = time.monotonic, burst: int = 5, window: float = 30.0,
        broker_summary_every: float = 30.0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.level = level
        self._emit = emit
        self._clock = clock
        self._lock = threading.Lock()
        self.limiter = RateLimiter(burst=burst, window=window)
        self.broker = BrokerWatch(broker_summary_every)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _OURS, False):
            return True
        now = self._clock()
        say: list[tuple[int, str]] = []
        with self._lock:
            if is_broker_contact(record) and (line := self.broker.contact(now)):
                say.append((logging.WARNING, line))
            kind = broker_error(record) if record.levelno >= self.level else None
            if record.levelno < self.level:
                keep = False
            elif kind == "down" or (kind == "trouble" and self.broker.unreachable):
                keep = False
                if line := self.broker.error(now, f"{record.name}: {record.getMessage()}"):
                    say.append((logging.WARNING, line))
            else:
                template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
                keep = self.limiter.admit((record.name, record.levelno, template), now)
        self._say(say)
        return keep

    def tick(self, *, final: bool = False) -> None:
        """Write the summaries that are due (called every second, and at exit with ``final``)."""
        now = self._clock()
        say: list[tuple[int, str]] = []
        with self._lock:
            if line := self.broker.tick(now):
                say.append((logging.WARNING, line))
            for s in self.limiter.summaries(now, final=final):
                name, level, template = s.key  # type: ignore[misc]
                say.append((level, f"suppressed {s.count} more like this from {name} in {_seconds(s.seconds)}: "
                                   f"{_shorten(template)}"))  # fmt: skip
        self._say(say)

    def _say(self, lines: list[tuple[int, str]]) -> None:
        for level, line in lines:
            name = "msgmem.broker" if line.startswith("broker ") else "msgmem.logging"
            record = logging.LogRecord(name, level, __file__, 0, line, None, None)
            setattr(record, _OURS, True)
            self._emit(record)


def _shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Ticker:
    def __init__(self, target: QuietFilter, interval: float) -> None:
        self._target = target
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), name="log-summaries", daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self._target.tick()

    def stop(self) -> None:
        self._stop.set()


_installed: tuple[logging.Handler, QuietFilter, _Ticker | None] | None = None


#: The top-level packages of this project; any other logger is a library's.
OUR_PACKAGES = frozenset({"contracts", "runtime", "ingest", "msgmem", "projections", "streams", "__main__"})


class LibraryLevel(logging.Filter):
    """Drops records of libraries' loggers below ``level`` (the CLI's: no library INFO unless --verbose)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level or record.name.split(".", 1)[0] in OUR_PACKAGES


def configure_logging(
    level: str | int, *, stream: IO[str] | None = None, ticker: bool = True, libraries: int | None = None,
    **limits: float,
) -> QuietFilter:
    """Log to ``stream`` (stderr) at ``level`` through a ``QuietFilter``; returns the filter.
    ``libraries``: a higher level for records of other packages' loggers.

    Calling it again replaces what the previous call installed. Handlers that others put
    on the root logger (pytest's, for one) are left alone. ``limits`` go to ``QuietFilter``.
    """
    global _installed
    levelno = level if isinstance(level, int) else logging.getLevelNamesMapping()[level.upper()]
    root = logging.getLogger()
    reset_logging()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(PrivateFormatter(FORMAT))
    if libraries is not None:
        handler.addFilter(LibraryLevel(libraries))  # before QuietFilter: a dropped record is not counted
    quiet = QuietFilter(emit=handler.handle, level=levelno, **limits)  # type: ignore[arg-type]
    handler.addFilter(quiet)
    root.addHandler(handler)
    root.setLevel(levelno)
    quiet_http_clients()
    # aiokafka logs the metadata updates that show the broker answering at DEBUG: let them
    # reach the filter, which reads and drops them (one every few minutes when all is well).
    for name in ("aiokafka.cluster", _CONTACT_LOGGER):
        contact = logging.getLogger(name)
        if contact.getEffectiveLevel() > logging.DEBUG:
            contact.setLevel(logging.DEBUG)
    _installed = (handler, quiet, _Ticker(quiet, 1.0) if ticker else None)
    atexit.register(quiet.tick, final=True)
    return quiet


def reset_logging() -> None:
    """Remove what ``configure_logging`` installed: its handler, its ticker and its summary at
    exit (a test run's captured stream is closed by then)."""
    global _installed
    if _installed is not None:
        handler, quiet, ticker = _installed
        logging.getLogger().removeHandler(handler)
        atexit.unregister(quiet.tick)
        if ticker is not None:
            ticker.stop()
        _installed = None


def process_settings() -> Settings:
    """What every process's ``main`` does first: settings from the environment, then logging
    configured once, here, before any client exists."""
    settings = Settings()
    configure_logging(settings.log_level)
    return settings
