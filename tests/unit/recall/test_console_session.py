"""The web console's session and CSRF checks, and its rendering helpers (pure: no server)."""

from __future__ import annotations

import time

from pydantic import SecretStr

from contracts.settings import Settings
from projections.recall.console.pages import highlight, ticks
from projections.recall.console.session import LoginLimiter, Sessions, csrf_ok

KEY = "operator-key-0123456789abcdef0123456789"
SIGNING = "session-signing-key-0123456789abcdef0123"


def sessions(**more: object) -> Sessions:
    values = {"console_api_key": SecretStr(KEY), "console_session_key": SecretStr(SIGNING)} | more
    return Sessions(Settings(_env_file=None, **values))  # type: ignore[call-arg, arg-type]


def test_the_console_is_off_without_either_key() -> None:
    for off in (sessions(console_api_key=None), sessions(console_session_key=None)):
        assert not off.enabled and not off.key_matches(KEY)
        _, cookie = off.new_session()
        assert off.read(cookie) is None


def test_only_the_key_logs_in_and_only_a_signed_unexpired_cookie_is_a_session() -> None:
    s = sessions()
    assert s.key_matches(KEY) and not s.key_matches(KEY[:-1]) and not s.key_matches("") and not s.key_matches("ü")
    session, cookie = s.new_session()
    assert s.read(cookie) == session and csrf_ok(session, session.csrf) and not csrf_ok(session, "forged")
    assert s.read(cookie[:-2] + "xx") is None and s.read("") is None and s.read(None) is None
    assert sessions(console_session_key=SecretStr(SIGNING + "other")).read(cookie) is None  # another key
    short = sessions(console_session_seconds=60)
    _, old = short.new_session()
    real = time.time
    try:
        time.time = lambda: real() + 120  # type: ignore[assignment]
        assert short.read(old) is None
    finally:
        time.time = real  # type: ignore[assignment]


def test_the_login_form_token_must_match_its_signed_cookie() -> None:
    s = sessions()
    token, cookie = s.new_login()
    assert s.login_ok(cookie, token) and not s.login_ok(cookie, token + "x") and not s.login_ok(None, token)
    other, _ = s.new_login()
    assert not s.login_ok(cookie, other)


def test_highlight_escapes_the_text_and_marks_the_query_words() -> None:
    marked = str(highlight("<b>order</b> 4271 & ORDER", "order 4271"))
    assert marked == "&lt;b&gt;<mark>order</mark>&lt;/b&gt; <mark>4271</mark> &amp; <mark>ORDER</mark>"
    assert str(highlight("<i>x</i>", "")) == "&lt;i&gt;x&lt;/i&gt;"
    assert (ticks("read"), ticks("failed"), ticks(None)) == ("✓✓", "✗", "🕓")


def test_the_login_limiter_refuses_a_client_after_its_failures_until_the_window_passes() -> None:
    now = [1000.0]
    limiter = LoginLimiter(failures=3, window=60, clients=2, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.refusal("a") is None
        limiter.failed("a")
        now[0] += 10
    assert limiter.refusal("a") == 30  # the first failure (at 1000) leaves the window at 1060; now 1030
    assert limiter.refusal("b") is None  # another client is not held back
    now[0] = 1060.5
    assert limiter.refusal("a") is None  # one failure left the window: it may try again
    limiter.failed("a")
    assert limiter.refusal("a") == 10  # three within the window again (1010, 1020, 1060.5)
    limiter.succeeded("a")
    assert limiter.refusal("a") is None
    for client in ("a", "b", "c"):  # at most two clients remembered: the longest unseen is forgotten
        limiter.failed(client)
    assert set(limiter._failed) == {"b", "c"}
