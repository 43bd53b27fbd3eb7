"""The web console's routes under ``/console``: thin, each reads what a function of
``projections.recall.memory`` / ``projections.recall.search`` (or the ``Pipeline`` it was
given) answers and renders a Jinja2 template (autoescaped) with it.

- ``GET/POST /console/login``, ``POST /console/logout``: the operator session (``session``);
- ``GET /console/``: chats by last message, searched by name or phone, filtered by provider/channel;
- ``GET /console/chats/{chat}``: the conversation, a page at a time (``before`` a cursor, or
  ``at`` a message); htmx asks for older pages as fragments;
- ``GET /console/chats/{chat}/search?q=``: recall within the chat, hits linking to their message;
- ``GET /console/search?q=``: recall across every chat, hits linking to their message in its chat;
- ``GET /console/pipeline``, ``POST /console/pipeline/retry``: lags and rates, dead letters (retry one),
  the retention policies' next sweep, the privacy requests applied.

Every page but the login needs the session; every POST form carries its CSRF token. A client
that failed 10 log-ins within a minute is answered 429 with Retry-After (``LoginLimiter``).
Input the console cannot take (a parameter too long or not text, a cursor or key that does not
decode) is answered with an HTML error page (400), not the memory API's JSON 422, which the
API's own routes keep. Nothing of a query, a message or a key is logged.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from contracts.settings import Settings
from projections.recall import memory
from projections.recall import request as checks
from projections.recall.console.pipeline import Pipeline
from projections.recall.console.session import (
    LOGIN_COOKIE, PATH, SESSION_COOKIE, LoginLimiter, Session, Sessions, csrf_ok,
)  # fmt: skip
from projections.recall.cursor import InvalidCursor
from projections.recall.search import UnknownChat, search
from projections.recall.search_everywhere import search_everywhere

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
PAGE_SIZE = 50
CHATS_PAGE = 50
SEARCH_HITS = 20
MAX_FORM_BYTES = 16 * 1024
OPERATOR = "console"

# Scripts and styles only from the console's own folder; media from wherever the store signs them.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src * data:; "
                                "media-src *; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}  # fmt: skip

Text = Annotated[str | None, Query(max_length=checks.MAX_QUERY_CHARS)]


class LoginNeeded(Exception):
    pass


class Off(Exception):
    pass


def templates() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)  # fmt: skip
    env.filters["highlight"] = highlight
    env.filters["ticks"] = ticks
    env.globals["quote"] = lambda s: quote(s, safe="")
    return env


def highlight(text: str | None, query: str) -> Markup:
    """``text`` escaped, with each word of ``query`` (2 characters or more) marked."""
    words = sorted({w for w in re.findall(r"\w{2,}", query or "")}, key=len, reverse=True)
    if not text or not words:
        return escape(text or "")
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    out, last = [], 0
    for m in pattern.finditer(text):
        out.append(str(escape(text[last:m.start()])))
        out.append(f"<mark>{escape(m.group(0))}</mark>")
        last = m.end()
    out.append(str(escape(text[last:])))
    return Markup("".join(out))


def ticks(status: str | None) -> str:
    """WhatsApp's delivery marks for an outbound message's status."""
    return {"sent": "✓", "delivered": "✓✓", "read": "✓✓", "played": "✓✓", "failed": "✗"}.get(status or "", "🕓")


def clean(value: str | None) -> str | None:
    """A filter value: validated as query text (no control characters), blank as None."""
    if value is None or not value.strip():
        return None
    return checks.validated(checks.ContextQuery, {"q": value.strip()}).q


def install(app: FastAPI, settings: Settings, pipeline: Pipeline | None = None) -> None:
    sessions = Sessions(settings)
    limiter = LoginLimiter()
    env = templates()
    if not sessions.enabled:
        log.warning("CONSOLE_API_KEY or CONSOLE_SESSION_KEY is not set: the web console is off")

    def render(request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        body = env.get_template(name).render(request=request, base=PATH, **values)
        return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)

    def current(request: Request) -> Session:
        if not sessions.enabled:
            raise Off()
        session = sessions.read(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise LoginNeeded()
        return session

    async def form(request: Request) -> dict[str, str]:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return {}
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=20))
        except (UnicodeDecodeError, ValueError):
            return {}

    operator = Depends(current)
    router = APIRouter(prefix=PATH, include_in_schema=False)

    @router.get("/login")
    async def login_page(request: Request) -> Response:
        if not sessions.enabled:
            raise Off()
        token, cookie = sessions.new_login()
        response = render(request, "login.html", token=token, failed=request.query_params.get("failed") == "1")
        response.set_cookie(LOGIN_COOKIE, cookie, max_age=600, path=PATH, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")  # fmt: skip
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        if not sessions.enabled:
            raise Off()
        client = request.client.host if request.client else "unknown"
        wait = limiter.refusal(client)
        if wait is not None:
            log.warning("console login refused: too many failed log-ins from this client")
            response = render(request, "error.html", 429, message="Too many failed log-ins from here. Try again in "
                              f"{wait} seconds.")  # fmt: skip
            response.headers["Retry-After"] = str(wait)
            return response
        fields = await form(request)
        if not (sessions.login_ok(request.cookies.get(LOGIN_COOKIE), fields.get("csrf", ""))
                and sessions.key_matches(fields.get("key", ""))):  # fmt: skip
            limiter.failed(client)
            log.warning("console login refused")
            return RedirectResponse(f"{PATH}/login?failed=1", status_code=303)
        limiter.succeeded(client)
        log.info("console login")
        _, cookie = sessions.new_session()
        response = RedirectResponse(f"{PATH}/", status_code=303)
        response.set_cookie(SESSION_COOKIE, cookie, max_age=sessions.seconds, path=PATH, httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")  # fmt: skip
        response.delete_cookie(LOGIN_COOKIE, path=PATH)
        return response

    @router.post("/logout")
    async def logout(request: Request, session: Session = operator) -> Response:
        response = RedirectResponse(f"{PATH}/login", status_code=303)
        if csrf_ok(session, (await form(request)).get("csrf", "")):
            response.delete_cookie(SESSION_COOKIE, path=PATH)
        return response

    @router.get("/")
    async def chats(request: Request, session: Session = operator, q: Text = None, provider: Text = None,
                    channel: Text = None, after: Text = None) -> Response:  # fmt: skip
        pool = request.app.state.pool
        text, provider, channel = clean(q), clean(provider), clean(channel)
        page = await memory.browse_chats(pool, text=text, provider=provider, channel=channel, limit=CHATS_PAGE,
                                         after=clean(after))  # fmt: skip
        filters = {"q": text or "", "provider": provider or "", "channel": channel or ""}
        more = urlencode({**filters, "after": page.next_cursor}) if page.next_cursor else None
        return render(request, "chats.html", session=session, page=page, filters=filters, more=more,
                      channels=await memory.chat_providers(pool))  # fmt: skip

    @router.get("/chats/{chat}")
    async def conversation(request: Request, chat: str, session: Session = operator, before: Text = None,
                           at: Text = None) -> Response:  # fmt: skip
        chat = _chat(chat)
        pool, links, own = request.app.state.pool, request.app.state.links, str(request.base_url)
        summary = await memory.chat_summary(pool, chat)
        if at:
            page = await memory.messages_from(pool, chat, _chat(at), PAGE_SIZE, links, own_base=own)
        else:
            query = checks.validated(checks.MessagesQuery, {"limit": PAGE_SIZE, "before": clean(before)})
            page = await memory.list_messages(pool, chat, query, links, own_base=own)
        edited = [m.id for m in page.messages if m.edited_at is not None]
        versions = await memory.message_versions(pool, edited)
        replies = [m.reply_to_provider_message_id for m in page.messages if m.reply_to_provider_message_id]
        quotes = await memory.quoted_messages(pool, chat, replies)
        values = {"session": session, "page": page, "versions": versions, "quotes": quotes, "detail": summary}
        if request.headers.get("hx-request") == "true":
            return render(request, "_messages.html", **values)
        return render(request, "conversation.html", **values)

    @router.get("/chats/{chat}/search")
    async def chat_search(request: Request, chat: str, session: Session = operator, q: Text = None) -> Response:
        chat, text = _chat(chat), clean(q)
        detail = await memory.chat_summary(request.app.state.pool, chat)
        answer = None
        if text:
            config = request.app.state.memory_config
            answer = await search(request.app.state.pool, request.app.state.embedder, chat, text, SEARCH_HITS,
                                  config.min_similarity, config=config.recall)  # fmt: skip
        return render(request, "search.html", session=session, detail=detail, q=text or "", answer=answer)

    @router.get("/search")
    async def search_all(request: Request, session: Session = operator, q: Text = None) -> Response:
        text = clean(q)
        found = None
        if text:
            config = request.app.state.memory_config
            found = await search_everywhere(request.app.state.pool, request.app.state.embedder, text, SEARCH_HITS,
                                            config=config.recall)  # fmt: skip
        return render(request, "search_all.html", session=session, q=text or "", found=found)

    @router.get("/pipeline")
    async def pipeline_page(request: Request, session: Session = operator) -> Response:
        view = await pipeline.view() if pipeline is not None else None
        return render(request, "pipeline.html", session=session, view=view,
                      result=request.query_params.get("result"))  # fmt: skip

    @router.post("/pipeline/retry")
    async def retry(request: Request, session: Session = operator) -> Response:
        fields = await form(request)
        if not csrf_ok(session, fields.get("csrf", "")):
            log.warning("console retry refused: bad CSRF token")
            return render(request, "error.html", 403, message="This form has expired. Reload the page and try again.")
        if pipeline is None:
            return RedirectResponse(f"{PATH}/pipeline", status_code=303)
        outcome = await pipeline.retry(fields.get("letter", "")[:1000], OPERATOR)
        result = "missing" if outcome is None else "resolved" if outcome.ok else "failed"
        log.info("console retried a dead letter: %s", result)
        return RedirectResponse(f"{PATH}/pipeline?result={result}", status_code=303)

    async def login_needed(request: Request, exc: Exception) -> Response:
        if request.headers.get("hx-request") == "true":
            return Response(status_code=401, headers={"HX-Redirect": f"{PATH}/login"})
        return RedirectResponse(f"{PATH}/login", status_code=303)

    previous = app.exception_handlers.get(UnknownChat)

    async def not_found(request: Request, exc: Exception) -> Response:
        if previous is not None and not request.url.path.startswith(f"{PATH}/"):
            return await previous(request, exc)  # the memory API's JSON 404
        return render(request, "error.html", 404, message="No chat has this key.")

    invalid_handlers = {t: app.exception_handlers.get(t) for t in (RequestValidationError, checks.InvalidQuery,
                                                                     InvalidCursor)}  # fmt: skip

    async def invalid(request: Request, exc: Exception) -> Response:
        if not request.url.path.startswith(f"{PATH}/"):  # the memory API's JSON 422, as it was
            previous = next((h for t, h in invalid_handlers.items() if isinstance(exc, t) and h), None)
            if previous is not None:
                return await previous(request, exc)
            return await request_validation_exception_handler(request, exc)  # type: ignore[arg-type]
        return render(request, "error.html", 400, message="The console cannot read this address: a value in it is "
                      "too long, not text, or out of date. Go back and try again.")  # fmt: skip

    async def off(request: Request, exc: Exception) -> Response:
        return render(request, "error.html", 503, message="The console is off: set CONSOLE_API_KEY and "
                      "CONSOLE_SESSION_KEY.")  # fmt: skip

    app.include_router(router)
    app.mount(f"{PATH}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_exception_handler(LoginNeeded, login_needed)
    app.add_exception_handler(Off, off)
    app.add_exception_handler(UnknownChat, not_found)
    for exc_type in invalid_handlers:
        app.add_exception_handler(exc_type, invalid)


def _chat(value: str) -> str:
    """A chat key or message id from the path or query, validated as the memory API validates keys."""
    return checks.validated(checks.RecallQuery, {"chat": value, "q": "x"}).chat
