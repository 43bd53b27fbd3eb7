"""A local Supabase Storage API (``/storage/v1``), enough for the media store adapter.

Buckets (``GET/POST /bucket``), multipart uploads (``POST /object/{bucket}/{path}``, 409
when the object exists and ``x-upsert`` is not true), object info, authenticated download,
signed URLs (``POST /object/sign/...``, served at ``GET /object/sign/...?token=``) and bulk
delete (``DELETE /object/{bucket}`` with ``prefixes``). Every request needs the service key
(``apikey`` and ``Authorization: Bearer``). Objects keep the content type of their upload
part, so a test can check that the adapter always sends one.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.faults import Call, CallLog, now


@dataclass
class StoredObject:
    data: bytes
    content_type: str


def _error(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"statusCode": str(status), "error": error, "message": message}, status_code=status)


class FakeSupabaseStorage:
    def __init__(self, service_key: str = "test-service-key") -> None:
        self.service_key = service_key
        self.buckets: dict[str, dict[str, object]] = {}
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.tokens: dict[str, tuple[str, str, float]] = {}
        self.calls = CallLog()
        p = "/storage/v1"
        self.app = Starlette(routes=[
            Route(f"{p}/bucket/{{bucket_id}}", self._get_bucket, methods=["GET"]),
            Route(f"{p}/bucket", self._create_bucket, methods=["POST"]),
            Route(f"{p}/object/info/{{bucket}}/{{path:path}}", self._info, methods=["GET"]),
            Route(f"{p}/object/sign/{{bucket}}/{{path:path}}", self._sign, methods=["POST"]),
            Route(f"{p}/object/sign/{{bucket}}/{{path:path}}", self._signed_download, methods=["GET"]),
            Route(f"{p}/object/{{bucket}}", self._delete, methods=["DELETE"]),
            Route(f"{p}/object/{{bucket}}/{{path:path}}", self._upload, methods=["POST"]),
            Route(f"{p}/object/{{bucket}}/{{path:path}}", self._download, methods=["GET"]),
        ])  # fmt: skip

    def _authorised(self, request: Request) -> bool:
        ok = request.headers.get("authorization") == f"Bearer {self.service_key}"
        self.calls.record(Call(request.url.path, now(), 200 if ok else 403, detail={"method": request.method}))
        return ok

    async def _get_bucket(self, request: Request) -> Response:
        if not self._authorised(request):
            return _error(403, "Unauthorized", "invalid signature")
        bucket = self.buckets.get(request.path_params["bucket_id"])
        if bucket is None:
            return _error(404, "Bucket not found", "Bucket not found")
        return JSONResponse(bucket)

    async def _create_bucket(self, request: Request) -> Response:
        if not self._authorised(request):
            return _error(403, "Unauthorized", "invalid signature")
        body = orjson.loads(await request.body())
        stamp = "2026-11-20T09:15:00Z"
        self.buckets[body["id"]] = {
            "id": body["id"], "name": body.get("name") or body["id"], "owner": "", "public": bool(body.get("public")),
            "created_at": stamp, "updated_at": stamp, "file_size_limit": None, "allowed_mime_types": None,
        }  # fmt: skip
        return JSONResponse({"name": body["id"]})

    async def _upload(self, request: Request) -> Response:
        if not self._authorised(request):
            return _error(403, "Unauthorized", "invalid signature")
        bucket, path = request.path_params["bucket"], request.path_params["path"]
        if bucket not in self.buckets:
            return _error(404, "Bucket not found", "Bucket not found")
        if (bucket, path) in self.objects and request.headers.get("x-upsert") != "true":
            return _error(409, "Duplicate", "The resource already exists")
        form = await request.form()
        part = form.get("file")
        if part is None or isinstance(part, str):
            return _error(400, "InvalidRequest", "no file")
        content_type = part.content_type or "text/plain"  # Storage's default, which the adapter must avoid
        self.objects[(bucket, path)] = StoredObject(await part.read(), content_type)
        return JSONResponse({"Key": f"{bucket}/{path}", "Id": secrets.token_hex(8)})

    async def _info(self, request: Request) -> Response:
        if not self._authorised(request):
            return _error(403, "Unauthorized", "invalid signature")
        obj = self.objects.get((request.path_params["bucket"], request.path_params["path"]))
        if obj is None:
            return _error(404, "not_found", "Object not found")
        return JSONResponse({"name": request.path_params["path"], "size": len(obj.data), "content_type": obj.content_type})

    async def _download(self, request: Request) -> Response:
        if not self._authorised(request):
            return _error(403, "Unauthorized", "invalid signature")
        obj = self.objects.get((request.path_params["bucket"], request.path_params["path"]))
        if obj is None:
            return _error(404, "not_found", "Object not found")
        return Response(obj.data, media_type=obj.content_type)

    async def _sign(self, request: Request) -> Response:
        if not self._authorised(request):
            return _error(403, "Unauthorized", "invalid signature")
        bucket, path = request.path_params["bucket"], request.path_params["path"]
        if (bucket, path) not in self.objects:
            return _error(404, "not_found", "Object not found")
        expires_in = int(orjson.loads(await request.body())["expiresIn"])
        token = secrets.token_urlsafe(16)
        self.tokens[token] = (bucket, path, time.time() + expires_in)
        return JSONResponse({"signedURL": f"/object/sign/{bucket}/{path}?token={token}"})

    async def _signed_download(self, request: Request) -> Response:
        bucket, path = request.path_params["bucket"], request.path_params["path"]
        grant = self.tokens.get(request.query_params.get("token", ""))
        if grant is None or grant[:2] != (bucket, path) or grant[2] < time.time():
            return _error(400, "InvalidJWT", "invalid or expired token")
        obj = self.objects[(bucket, path)]
        return Response(obj.data, media_type=obj.content_type)

    async def _delete(self, request: Request) -> Response:
        if not self._authorised(request):
            return _error(403, "Unauthorized", "invalid signature")
        bucket = request.path_params["bucket"]
        prefixes = orjson.loads(await request.body()).get("prefixes") or []
        removed = [{"name": p} for p in prefixes if self.objects.pop((bucket, p), None) is not None]
        return JSONResponse(removed)
