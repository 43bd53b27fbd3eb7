"""The console's operator session: a login with CONSOLE_API_KEY (compared in constant time)
opens a session held in a signed cookie (itsdangerous, CONSOLE_SESSION_KEY), HttpOnly and
SameSite=Strict, that expires after CONSOLE_SESSION_SECONDS. The session carries a random
CSRF token every POST form repeats (``csrf_ok``); the login form has one of its own, kept in
a short-lived signed cookie of its own. Keys and tokens are never logged.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from contracts.settings import Settings

SESSION_COOKIE = "mm_console"
LOGIN_COOKIE = "mm_console_login"
LOGIN_SECONDS = 600
PATH = "/console"


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
