"""The console's operator session: a login with CONSOLE_API_KEY (compared in constant time)
opens a session held in a signed cookie (itsdangerous, CONSOLE_SESSION_KEY), HttpOnly and
SameSite=Strict, that expires after CONSOLE_SESSION_SECONDS. The session carries a random
CSRF token every POST form repeats (``csrf_ok``); the login form has one of its own, kept in
a short-lived signed cookie of its own. Keys and tokens are never logged.

``LoginLimiter``: a client (its address) that failed ``LOGIN_FAILURES`` log-ins within
``LOGIN_WINDOW_SECONDS`` is refused (429, Retry-After) until the oldest of them is a window
old; in memory, per process.
"""

from __future__ import annotations

import hmac
import math
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from contracts.settings import Settings

SESSION_COOKIE = "mm_console"
LOGIN_COOKIE = "mm_console_login"
LOGIN_SECONDS = 600
PATH = "/console"
LOGIN_FAILURES = 10
LOGIN_WINDOW_SECONDS = 60.0
LOGIN_CLIENTS = 10_000  # clients remembered at most; the longest unseen are forgotten first


@dataclass(frozen=True)
class Session:
    csrf: str


class Sessions:
    """Issues and reads the console's cookies. ``enabled`` is False when a key is missing."""

    def __init__(self, settings: Settings) -> None:
        self._api_key = settings.console_api_key.get_secret_value().encode() if settings.console_api_key else b""
        signing = settings.console_session_key.get_secret_value() if settings.console_session_key else ""
        self.enabled = bool(self._api_key and signing)
        self.seconds = settings.console_session_seconds
        self._session = URLSafeTimedSerializer(signing or "off", salt="msgmem-console-session")
        self._login = URLSafeTimedSerializer(signing or "off", salt="msgmem-console-login")

    def key_matches(self, given: str) -> bool:
        """Constant time, whatever ``given`` is; always False when the console is off."""
        return self.enabled and hmac.compare_digest(self._api_key, given.encode())

    def new_session(self) -> tuple[Session, str]:
        session = Session(csrf=secrets.token_urlsafe(24))
        return session, self._session.dumps({"csrf": session.csrf})

    def read(self, cookie: str | None) -> Session | None:
        if not self.enabled or not cookie:
            return None
        try:
            data = self._session.loads(cookie, max_age=self.seconds)
        except BadSignature:  # tampered, or expired (SignatureExpired is one)
            return None
        csrf = data.get("csrf") if isinstance(data, dict) else None
        return Session(csrf) if isinstance(csrf, str) and csrf else None

    def new_login(self) -> tuple[str, str]:
        """A login form's token and the cookie that vouches for it."""
        token = secrets.token_urlsafe(24)
        return token, self._login.dumps(token)

    def login_ok(self, cookie: str | None, given: str) -> bool:
        if not self.enabled or not cookie:
            return False
        try:
            token = self._login.loads(cookie, max_age=LOGIN_SECONDS)
        except BadSignature:
            return False
        return isinstance(token, str) and hmac.compare_digest(token.encode(), given.encode())


def csrf_ok(session: Session, given: str) -> bool:
    return hmac.compare_digest(session.csrf.encode(), given.encode())


class LoginLimiter:
    """Failed log-ins by client, over a sliding window: ``refusal`` says how many seconds a
    client must wait (None: it may try). A successful log-in forgets the client's failures.
    At most ``clients`` clients are remembered (a flood of addresses cannot grow it unbounded)."""

    def __init__(self, failures: int = LOGIN_FAILURES, window: float = LOGIN_WINDOW_SECONDS,
                 clients: int = LOGIN_CLIENTS, clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.failures, self.window, self.clients, self.clock = failures, window, clients, clock
        self._failed: dict[str, deque[float]] = {}

    def _recent(self, client: str) -> deque[float] | None:
        times = self._failed.get(client)
        if times is None:
            return None
        cutoff = self.clock() - self.window
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._failed[client]
            return None
        return times

    def refusal(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None when it may now."""
        times = self._recent(client)
        if times is None or len(times) < self.failures:
            return None
        return max(1, math.ceil(times[-self.failures] + self.window - self.clock()))

    def failed(self, client: str) -> None:
        times = self._recent(client)
        if times is None:
            times = self._failed[client] = deque(maxlen=self.failures)
            while len(self._failed) > self.clients:
                del self._failed[next(iter(self._failed))]
        else:
            self._failed[client] = self._failed.pop(client)  # the most recently seen last
        times.append(self.clock())

    def succeeded(self, client: str) -> None:
        self._failed.pop(client, None)
