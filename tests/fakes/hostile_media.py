"""A hostile origin for the media stage's security tests, on a real socket.

It records every request with the headers an attacker is after (``authorization``,
``apikey``) and the ones that show how it was asked (``accept-encoding``, ``host``), and
answers each path as the test scripted: a redirect elsewhere, a gzip bomb, bytes under a
false content type, a Graph lookup or an Evolution base64 answer. Unscripted paths get 404.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

MIB = 1024 * 1024


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]

    def carries(self, secret: str) -> bool:
        return any(secret in value for value in self.headers.values())


def gzip_of_zeros(size: int, prefix: bytes = b"", suffix: bytes = b"", fill: bytes = b"\0") -> bytes:
    """``prefix + fill * ... + suffix`` (``size`` bytes in all) gzip-compressed, built in chunks:
    a few hundred KiB that inflate to ``size``."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [packer.compress(prefix)]
    left = size - len(prefix) - len(suffix)
    block = fill * MIB
    while left > 0:
        out.append(packer.compress(block[: min(MIB, left)]))
        left -= MIB
    out.append(packer.compress(suffix))
    out.append(packer.flush())
    return b"".join(out)


@dataclass
class _Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] | None = None
    location: str | None = None


class HostileOrigin:
    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._answers: dict[str, _Answer] = {}
        self.app = Starlette(routes=[Route("/{path:path}", self._any, methods=["GET", "POST"])])

    # --- scripting -------------------------------------------------------------------------------

    def redirect(self, path: str, to: str, status: int = 302) -> None:
        self._answers[path] = _Answer(status, location=to)

    def serve(self, path: str, body: bytes, content_type: str, **headers: str) -> None:
        self._answers[path] = _Answer(200, body, {"content-type": content_type, **headers})

    def serve_json(self, path: str, value: object) -> None:
        self.serve(path, orjson.dumps(value), "application/json")

    def gzip_bomb(self, path: str, body: bytes, content_type: str) -> None:
        """``body`` (already gzip) sent with Content-Encoding: gzip, whatever the client asked."""
        self.serve(path, body, content_type, **{"content-encoding": "gzip"})

    # --- what it got -----------------------------------------------------------------------------

    def requests(self, path_prefix: str = "/") -> list[Seen]:
        return [s for s in self.seen if s.path.startswith(path_prefix)]

    def leaked(self, *secrets: str) -> list[Seen]:
        """Requests whose headers carried any of ``secrets``."""
        return [s for s in self.seen if any(s.carries(secret) for secret in secrets)]

    async def _any(self, request: Request) -> Response:
        path = request.url.path
        self.seen.append(Seen(request.method, path, {k.lower(): v for k, v in request.headers.items()}))
        answer = self._answers.get(path)
        if answer is None:
            return Response(b"not here", status_code=404)
        if answer.location is not None:
            return RedirectResponse(answer.location, status_code=answer.status)

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(answer.body), 64 * 1024):
                yield answer.body[start : start + 64 * 1024]

        headers = {**(answer.headers or {}), "content-length": str(len(answer.body))}
        return StreamingResponse(chunks(), status_code=answer.status, headers=headers)
