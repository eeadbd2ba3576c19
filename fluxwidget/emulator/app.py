"""The emulator's ASGI app: fal's queue protocol for the ``fal-ai/flux-lora`` family.

Routes (base = the emulator's URL)::

    POST /fal-ai/flux-lora[/{subpath}]                submit (``image-to-image`` and
                                                      ``inpainting`` validate with their own
                                                      model, `INPUT_MODELS`; another subpath as
                                                      flux-lora; ?fal_webhook ignored)
    GET  /fal-ai/flux-lora/requests/{id}/status       status (?logs=1|0|true|false)
    GET  /fal-ai/flux-lora/requests/{id}/status/stream  Server-Sent Events
    GET  /fal-ai/flux-lora/requests/{id}              result
    PUT  /fal-ai/flux-lora/requests/{id}/cancel       cancel
    GET  /files/{id}/{index}.{jpeg|png}               image download (no auth, like a CDN)
    POST /run/fal-ai/flux-lora[/{subpath}]            fal.run's synchronous shape (the result)
    GET  /v1/models/pricing?endpoint_id=...           fal's platform API: the unit price
    GET  /v1/models/requests/by-endpoint?...          fal's platform API: the account's requests
    POST /storage/auth/token, /files/upload[/multipart], /uploads/...   fal's storage (see
                                                      `fluxwidget.emulator.storage`)

Choices where fal's behaviour is not documented:

- result before completion: ``400 {"detail": "Request is still in progress"}``;
- result of a cancelled job: ``400 {"detail": "Request was cancelled"}`` (its status is
  ``COMPLETED`` with ``error: "Request was cancelled"``, ``error_type: "request_cancelled"``);
- expired result: ``404 {"detail": "Request result has expired"}``;
- cancel of a finished job: ``400 {"status": "ALREADY_COMPLETED"}``;
- invalid input is accepted on submit; the job completes with an error and its result answers
  ``422`` with fal's ``detail`` list — except a LoRA path the server could never fetch, which is
  refused at submit with ``422`` and fal's ``detail`` list (``loc`` ``["body", "loras", i,
  "path"]``), no job created: a local file path (fal cannot read the user's disk; upload it), a
  URL on the emulator's own host that its storage does not hold, and — with
  ``lora_urls="own"`` — any URL of another host. Hugging Face ids (``owner/name``) and, by
  default (``lora_urls="any"``), http(s) URLs of other hosts are accepted unchecked (the
  emulator never downloads LoRAs). fal itself would accept such a submit and fail the job when
  its runner cannot download the file; refusing early keeps tests quick and nothing billed.
  ``image_url`` and ``mask_url`` follow the same rule (``loc`` ``["body", "image_url"]``), and
  must be http(s) URLs or ``data:`` URIs; one the emulator holds (its storage, a data: URI) must
  decode as an image, and a mask must have its image's size. The emulator fetches only those
  it holds: image-to-image then draws from the input image (its size is the output's size when
  ``image_size`` is unset) and inpainting changes only the mask's white area; an image on
  another host (``lora_urls="any"``) is not fetched and the placeholder is drawn alone, at
  ``DEFAULT_UNKNOWN_SIZE`` when no ``image_size`` is given.
- a submit body over `MAX_SUBMIT_BYTES` is refused with ``413``, and JSON nested deeper than
  `MAX_JSON_DEPTH` with ``422`` (a body problem), before any job exists. Only the submit
  route is capped: it is the only one whose body the emulator reads as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import io
import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal
from urllib.parse import urlsplit

from PIL import Image
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from fluxwidget.emulator.faults import (
    DropResponse,
    Fault,
    FaultBook,
    TransportMap,
    keepalive_stream,
)
from fluxwidget.emulator.jobs import Job, JobState, Scheduler
from fluxwidget.emulator.listing import listing
from fluxwidget.emulator.outputs import FileStore, produce
from fluxwidget.emulator.protocol import (
    body_problem,
    status_body,
    submit_body,
    validation_detail,
)
from fluxwidget.emulator.render import content_type
from fluxwidget.emulator.storage import MAX_FILE_BYTES, Multipart, UploadStore, etag_of
from fluxwidget.images import decode_data_uri
from fluxwidget.schema import ENDPOINT_ID, INPUT_MODELS, FluxLoraInput, lora_path_kind

LoraURLs = Literal["any", "own"]

AUTH_FAILED = {"detail": "No user found for Key ID and Secret"}
MAX_SUBMIT_BYTES = 1 << 20
"""The largest submit body the emulator reads (1 MiB): a larger one is answered 413."""
MAX_JSON_DEPTH = 32
"""The deepest nesting of objects and lists a submit body may have: deeper is answered 422."""
PRICE_PER_MEGAPIXEL = 0.035
"""flux-lora's documented price, served by the emulator's pricing call (for the whole family:
the price of ``image-to-image`` and ``inpainting`` is unverified and assumed the same)."""
IMAGE_FIELDS = ("image_url", "mask_url")
"""The inputs of the family that name an image the server downloads."""
_MAX_IMAGE_PIXELS = 100_000_000
_METHODS = {
    "submit": "POST",
    "status": "GET",
    "stream": "GET",
    "result": "GET",
    "cancel": "PUT",
    "file": "GET",
    "token": "POST",
    "upload": "POST",
    "multipart": "POST",
    "part": "PUT",
    "complete": "POST",
    "uploaded": "GET",
}
_TAILS = {
    (): "result",
    ("status",): "status",
    ("status", "stream"): "stream",
    ("cancel",): "cancel",
}


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _storage_route(segments: list[str]) -> str | None:
    if segments == ["storage", "auth", "token"]:
        return "token"
    if segments == ["files", "upload"]:
        return "upload"
    if segments == ["files", "upload", "multipart"]:
        return "multipart"
    if segments[:1] == ["uploads"]:
        if len(segments) == 3:
            return "uploaded"
        if len(segments) == 6 and segments[3] == "multipart":
            return "complete" if segments[5] == "complete" else "part"
    return None


def _lifetime(header: str | None) -> tuple[int | None, str | None]:
    """``expiration_duration_seconds`` from X-Fal-Object-Lifecycle-Preference, or a problem."""
    if header is None:
        return None, None
    try:
        value = json.loads(header)
    except ValueError:
        return None, "X-Fal-Object-Lifecycle-Preference is not JSON"
    seconds = value.get("expiration_duration_seconds") if isinstance(value, dict) else None
    if seconds is None:
        return None, None
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 1:
        return None, "expiration_duration_seconds must be a whole number of seconds ≥ 1"
    return seconds, None


SYNC_TIMEOUT = 600.0
"""How long the synchronous shape (``POST /run/<app>``) waits for a job, as fal.run does."""


def _route_of(segments: list[str]) -> str | None:
    if len(segments) == 3 and segments[0] == "files":
        return "file"
    if len(segments) < 2:
        return None
    rest = segments[2:]
    if rest[:1] == ["requests"] and len(rest) >= 2:
        return _TAILS.get(tuple(rest[2:]))
    return "submit"


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than `limit` bytes (not read further)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and lists nest more than `limit` levels (the top one is level 1)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def _text_nests_deeper_than(raw: bytes, limit: int) -> bool:
    """Whether JSON text opens more than `limit` objects or lists at once (brackets inside
    strings not counted), found without parsing: ``json.loads`` would recurse that deep, and
    whatever else runs on a stack that deep (a garbage collection's finalizers) fails."""
    if raw.count(b"[") + raw.count(b"{") <= limit:  # the usual body: nothing to scan
        return False
    depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


class EmulatorApp:
    """The ASGI callable; state lives in the scheduler, the file store and the fault book."""

    def __init__(
        self,
        *,
        api_key: str,
        scheduler: Scheduler,
        store: FileStore,
        faults: FaultBook,
        transports: TransportMap,
        keepalive_interval: float,
        public_url: str | None = None,
        uploads: UploadStore | None = None,
        lora_urls: LoraURLs = "any",
        stream_connection_close: bool = False,
    ) -> None:
        if lora_urls not in ("any", "own"):
            raise ValueError(f"lora_urls: {lora_urls!r} is not allowed; use 'any' or 'own'")
        self._api_key = api_key
        self.uploads = uploads if uploads is not None else UploadStore()
        self.lora_urls = lora_urls
        self.scheduler = scheduler
        self.store = store
        self.faults = faults
        self.transports = transports
        self.keepalive_interval = keepalive_interval
        self.public_url = public_url
        self.stream_connection_close = stream_connection_close
        """End each status stream with ``Connection: close`` (the protocol allows it): the
        client cannot reuse the stream's connection for the result."""
        self.max_submit_bytes = MAX_SUBMIT_BYTES
        self.max_json_depth = MAX_JSON_DEPTH
        self.calls: list[tuple[str, str, int]] = []
        self.authorizations: list[tuple[str, str, str]] = []
        """(method, path, Authorization header) of every call, for tests."""
        self.submit_count = 0
        self.closing = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        call = (scope["method"], scope["path"])
        logged = False
        authorization = ""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                authorization = value.decode("latin-1")
        self.authorizations.append((*call, authorization))

        def log(status: int) -> None:
            # logged before the reply leaves, so a test sees it as soon as it has the reply
            nonlocal logged
            if not logged:
                logged = True
                self.calls.append((*call, status))

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                log(message["status"])
            await send(message)

        try:
            response = await self._dispatch(Request(scope, receive))
            if isinstance(response, DropResponse):
                log(0)
            await response(scope, receive, send_logged)
        finally:
            log(500)  # failed before replying: uvicorn answers 500

    # --- routing, faults, auth ------------------------------------------------------------

    async def _dispatch(self, request: Request) -> Response:
        segments = [part for part in request.url.path.split("/") if part]
        if segments == ["v1", "models", "pricing"]:
            return self._pricing(request)
        if segments == ["v1", "models", "requests", "by-endpoint"]:
            return await self._listing(request)
        if segments[:1] == ["run"] and len(segments) >= 3:
            return await self._run_sync(request, segments[1:])
        storage = _storage_route(segments)
        route = storage or _route_of(segments)
        if route is None:
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        if request.method != _METHODS[route]:
            return JSONResponse({"detail": "Method Not Allowed"}, status_code=405)
        fault = self.faults.take(route)
        faulted = await self._fault(fault, request)
        if faulted is not None:
            return faulted
        if storage is not None:
            response = await self._storage(request, storage, segments)
        else:
            response = await self._route(request, route, segments)
        return fault.wrap(response, self.closing) if fault is not None else response

    async def _route(self, request: Request, route: str, segments: list[str]) -> Response:
        if route == "file":
            return await self._file(segments[1], segments[2])
        if not self._authorized(request):
            return JSONResponse(AUTH_FAILED, status_code=401)
        app_id = "/".join(segments[:2])
        if app_id != ENDPOINT_ID:
            return JSONResponse(
                {"detail": f"Application '{app_id}' not found (the emulator serves {ENDPOINT_ID})"},
                status_code=404,
            )
        if route == "submit":
            return await self._submit(request, "/".join(segments[2:]))
        job = self.scheduler.jobs.get(segments[3])
        if job is None:
            if route == "cancel":
                return JSONResponse({"status": "NOT_FOUND"}, status_code=404)
            return JSONResponse({"detail": "Request not found"}, status_code=404)
        if route == "status":
            return self._status(job, _truthy(request.query_params.get("logs")))
        if route == "stream":
            return self._stream(job, _truthy(request.query_params.get("logs")))
        if route == "result":
            return self._result(job)
        return self._cancel(job)

    async def _fault(self, fault: Fault | None, request: Request) -> Response | None:
        """Apply a fault: wait its delay, then drop, answer its own reply, or carry on (None)."""
        if fault is None:
            return None
        if fault.delay > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.closing.wait(), fault.delay)
        if fault.drop:
            return DropResponse(self.transports)
        if fault.keepalive_only:
            return StreamingResponse(
                keepalive_stream(self.keepalive_interval, self.closing),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        return fault.response(key=self._api_key, path=request.url.path)

    # --- storage ------------------------------------------------------------------------------

    async def _storage(self, request: Request, route: str, segments: list[str]) -> Response:
        if route == "uploaded":
            stored = self.uploads.get(segments[1], segments[2])
            if stored is None:
                return JSONResponse({"detail": "File not found"}, status_code=404)
            return Response(stored.data, media_type=stored.content_type)
        if route == "token":
            if not self._authorized(request):
                return JSONResponse(AUTH_FAILED, status_code=401)
            token, expires_at = self.uploads.issue_token()
            body = {
                "token": token,
                "token_type": "Bearer",
                "base_url": self._base_url(request).rstrip("/"),
                "expires_at": expires_at,
            }
            return JSONResponse(body)
        refusal = self._storage_refusal(request)
        if refusal is not None:
            return JSONResponse({"detail": refusal}, status_code=401)
        if int(request.headers.get("content-length") or 0) > MAX_FILE_BYTES:
            return JSONResponse({"detail": "File too large for the emulator"}, status_code=413)
        if route in ("upload", "multipart"):
            lifetime, problem = _lifetime(request.headers.get("x-fal-object-lifecycle-preference"))
            if problem is not None:
                return JSONResponse({"detail": problem}, status_code=400)
            name = request.headers.get("x-fal-file-name") or "file"
            kind = request.headers.get("content-type") or "application/octet-stream"
            if route == "upload":
                stored = self.uploads.add(name, kind, await request.body(), lifetime)
                url = self._access_url(request, stored.file_id, stored.name)
                return JSONResponse({"access_url": url})
            started = self.uploads.start(name, kind, lifetime)
            url = self._access_url(request, started.file_id, started.name)
            return JSONResponse({"access_url": url, "uploadId": started.upload_id})
        session = self.uploads.sessions.get(segments[4])
        if session is None or (session.file_id, session.name) != (segments[1], segments[2]):
            return JSONResponse({"detail": "No such multipart upload"}, status_code=404)
        if route == "part":
            number = int(segments[5]) if segments[5].isdigit() else 0
            if not 1 <= number <= 10000:
                return JSONResponse({"detail": "Part numbers go from 1 to 10000"}, status_code=400)
            data = await request.body()
            session.parts[number] = data
            session.etags[number] = etag_of(data)
            return Response(b"", headers={"ETag": session.etags[number]})
        return await self._complete(request, session)

    async def _complete(self, request: Request, session: Multipart) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        parts = body.get("parts") if isinstance(body, dict) else None
        if not isinstance(parts, list) or not parts:
            return JSONResponse({"detail": "'parts' must be a non-empty list"}, status_code=400)
        numbers = []
        for part in parts:
            number = part.get("partNumber") if isinstance(part, dict) else None
            etag = part.get("etag") if isinstance(part, dict) else None
            if not isinstance(number, int) or session.etags.get(number) != etag:
                detail = f"part {number!r}: no such part, or its etag does not match"
                return JSONResponse({"detail": detail}, status_code=400)
            numbers.append(number)
        # any order (fal-client lists parts as they finish), but each part once, from 1 up
        numbers.sort()
        if numbers != list(range(1, len(numbers) + 1)) or len(numbers) != len(session.parts):
            detail = "parts must be listed once each, numbered from 1 with no gap"
            return JSONResponse({"detail": detail}, status_code=400)
        data = b"".join(session.parts[n] for n in numbers)
        stored = self.uploads.finish(session, data, len(numbers))
        return JSONResponse({"access_url": self._access_url(request, stored.file_id, stored.name)})

    def _access_url(self, request: Request, file_id: str, name: str) -> str:
        return f"{self._base_url(request).rstrip('/')}/uploads/{file_id}/{name}"

    def _storage_refusal(self, request: Request) -> str | None:
        """Why an upload call's Authorization is refused (None: a valid upload token)."""
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        token = token.strip()
        if token and hmac.compare_digest(token.encode(), self._api_key.encode()):
            return "The fal key is not accepted by storage: use the token of /storage/auth/token"
        if scheme.lower() != "bearer" or not self.uploads.token_ok(token):
            return "Missing, unknown or expired upload token"
        return None

    def _lora_problems(self, payload: Any, request: Request) -> list[dict[str, Any]]:
        """fal's 422 detail items for LoRA paths the server could never fetch."""
        loras = payload.get("loras") if isinstance(payload, dict) else None
        if not isinstance(loras, list):
            return []
        problems = []
        for index, lora in enumerate(loras):
            path = lora.get("path") if isinstance(lora, dict) else None
            if not isinstance(path, str) or not path.strip():
                continue
            message = self._lora_refusal(path.strip(), request)
            if message is not None:
                problems.append(
                    {
                        "loc": ["body", "loras", index, "path"],
                        "msg": message,
                        "type": "value_error",
                        "input": path,
                    }
                )
        return problems

    def _lora_refusal(self, path: str, request: Request) -> str | None:
        kind = lora_path_kind(path)
        if kind == "repo":
            return None
        if kind == "other":
            return (
                "is not an http(s) URL or a Hugging Face repo id: the server cannot read files "
                "on your computer (upload the file first: client.upload(path))"
            )
        return self._url_refusal(path, request)

    def _own_file(self, url: str, request: Request) -> bytes | None:
        """The bytes of an URL on the emulator's own host that its storage holds, else None."""
        parts = urlsplit(url)
        own = {urlsplit(self._base_url(request)).netloc, request.url.netloc}
        segments = [part for part in parts.path.split("/") if part]
        if parts.netloc in own and len(segments) == 3 and segments[0] == "uploads":
            stored = self.uploads.get(segments[1], segments[2])
            return stored.data if stored is not None else None
        return None

    def _image_inputs(
        self, payload: Any, request: Request
    ) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
        """fal's 422 detail items for ``image_url``/``mask_url`` values the server could never
        fetch or read, and the bytes of those it holds (its storage, data: URIs)."""
        if not isinstance(payload, dict):
            return [], {}
        problems: list[dict[str, Any]] = []
        held: dict[str, bytes] = {}
        sizes: dict[str, tuple[int, int]] = {}

        def refuse(name: str, value: str, message: str) -> None:
            problems.append(
                {"loc": ["body", name], "msg": message, "type": "value_error", "input": value}
            )

        for name in IMAGE_FIELDS:
            value = payload.get(name)
            if not isinstance(value, str) or not value.strip():
                continue  # missing or not text: the model's validation says so
            text = value.strip()
            data: bytes | None = None
            if text.lower().startswith("data:"):
                try:
                    data = decode_data_uri(text)[0]
                except ValueError as exc:
                    refuse(name, value, f"is not a usable data: URI ({exc})")
                    continue
            elif lora_path_kind(text) != "url":
                refuse(
                    name,
                    value,
                    "is not an http(s) URL or a data: URI: the server cannot read files on "
                    "your computer (upload the file first: client.upload(path))",
                )
                continue
            else:
                message = self._url_refusal(text, request)
                if message is not None:
                    refuse(name, value, message)
                    continue
                data = self._own_file(text, request)
            if data is None:
                continue
            size = _decoded_size(data)
            if size is None:
                refuse(name, value, "could not be read as an image")
                continue
            held[name] = data
            sizes[name] = size
        image, mask = sizes.get("image_url"), sizes.get("mask_url")
        if image is not None and mask is not None and image != mask:
            refuse(
                "mask_url",
                str(payload.get("mask_url")),
                f"the mask is {mask[0]}x{mask[1]} but the image is {image[0]}x{image[1]}: "
                "they must be the same size",
            )
        return problems, held

    def _url_refusal(self, path: str, request: Request) -> str | None:
        """Why an http(s) URL could never be downloaded by this emulator (None: it could)."""
        parts = urlsplit(path)
        own = {urlsplit(self._base_url(request)).netloc, request.url.netloc}
        if parts.netloc in own:
            segments = [part for part in parts.path.split("/") if part]
            if (
                len(segments) == 3
                and segments[0] == "uploads"
                and self.uploads.get(segments[1], segments[2]) is not None
            ):
                return None
            return "could not be downloaded: the emulator's storage holds no such file"
        if self.lora_urls == "own":
            return (
                "could not be downloaded: this emulator fetches only files uploaded to its own "
                "storage (lora_urls='own')"
            )
        return None

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() not in {"key", "bearer"}:
            return False
        return hmac.compare_digest(token.strip().encode(), self._api_key.encode())

    def _base_url(self, request: Request) -> str:
        return self.public_url or str(request.base_url)

    def _pricing(self, request: Request) -> Response:
        """fal's ``GET /v1/models/pricing``: the documented flux-lora price, marked emulated."""
        if request.method != "GET":
            return JSONResponse({"detail": "Method Not Allowed"}, status_code=405)
        if not self._authorized(request):
            return JSONResponse(AUTH_FAILED, status_code=401)
        wanted = request.query_params.getlist("endpoint_id") or [ENDPOINT_ID]
        unknown = [e for e in wanted if e.split("/")[:2] != ENDPOINT_ID.split("/")]
        if unknown:
            detail = f"No pricing for {', '.join(unknown)} (the emulator serves {ENDPOINT_ID})"
            return JSONResponse({"detail": detail}, status_code=404)
        price = {"unit_price": PRICE_PER_MEGAPIXEL, "unit": "megapixels", "currency": "USD"}
        prices = [{"endpoint_id": e, **price} for e in wanted]
        body = {"prices": prices, "next_cursor": None, "has_more": False, "emulator": True}
        return JSONResponse(body)

    async def _listing(self, request: Request) -> Response:
        """fal's ``GET /v1/models/requests/by-endpoint`` (see `emulator.listing`)."""
        if request.method != "GET":
            return JSONResponse({"detail": "Method Not Allowed"}, status_code=405)
        fault = self.faults.take("listing")
        faulted = await self._fault(fault, request)
        if faulted is not None:
            return faulted
        if not self._authorized(request):
            return JSONResponse(AUTH_FAILED, status_code=401)
        response = listing(self.scheduler, request.query_params)
        return fault.wrap(response, self.closing) if fault is not None else response

    # --- the calls --------------------------------------------------------------------------

    async def _submit(self, request: Request, subpath: str) -> Response:
        timeout_header = request.headers.get("x-fal-request-timeout")
        start_timeout: float | None = None
        if timeout_header is not None:
            try:
                start_timeout = float(timeout_header)
            except ValueError:
                start_timeout = -1.0
            if not start_timeout > 0:
                detail = "X-Fal-Request-Timeout must be a positive number of seconds"
                return JSONResponse({"detail": detail}, status_code=400)
        endpoint = f"{ENDPOINT_ID}/{subpath}" if subpath else ENDPOINT_ID
        model = INPUT_MODELS.get(endpoint, FluxLoraInput)
        raw = await _read_capped(request, self.max_submit_bytes)
        if raw is None:
            limit = f"{self.max_submit_bytes:,} bytes"
            detail = f"Request body is too large (the limit is {limit})"
            return JSONResponse({"detail": detail}, status_code=413)
        payload, data, problems = self._parse(raw, model, self.max_json_depth)
        if problems is not None and problems[0].get("type") == "json_too_deep":
            return JSONResponse({"detail": problems}, status_code=422)
        refused = self._lora_problems(payload, request)
        images: dict[str, bytes] = {}
        if model is not FluxLoraInput:
            image_problems, images = self._image_inputs(payload, request)
            refused += image_problems
        if refused:
            return JSONResponse({"detail": refused}, status_code=422)
        seed = 0
        if data is not None:
            seed = data.seed if data.seed is not None else random.getrandbits(64)
        job = Job(
            request_id=str(uuid.uuid4()),
            payload=payload,
            input=data,
            problems=problems,
            base_url=self._base_url(request),
            seed=seed,
            subpath=subpath,
            source=images.get("image_url"),
            mask=images.get("mask_url"),
        )
        self.scheduler.submit(job, start_timeout)
        self.submit_count += 1
        fault = self.faults.take("submit", after_accept=True)
        faulted = await self._fault(fault, request)
        if faulted is not None:
            if fault is not None and fault.body is not None:  # a raw reply of the accepted job
                faulted.headers.setdefault("x-fal-request-id", job.request_id)
            return faulted
        body = submit_body(job, self.scheduler.position(job) or 0)
        response = JSONResponse(body, headers={"x-fal-request-id": job.request_id})
        return fault.wrap(response, self.closing) if fault is not None else response

    @staticmethod
    def _parse(
        raw: bytes, model: type[FluxLoraInput] = FluxLoraInput, max_depth: int = MAX_JSON_DEPTH
    ) -> tuple[Any, FluxLoraInput | None, list[dict[str, Any]] | None]:
        """The payload, and either the input validated with the endpoint's `model` or fal's
        422 detail list."""
        too_deep = body_problem(f"JSON nested deeper than {max_depth} levels", "json_too_deep")
        if _text_nests_deeper_than(raw, max_depth):
            return None, None, too_deep
        try:
            payload = json.loads(raw) if raw.strip() else {}
        except RecursionError:
            return None, None, too_deep
        except ValueError:
            return None, None, body_problem("Invalid JSON body", "json_invalid")
        if _deeper_than(payload, max_depth):
            return None, None, too_deep
        if not isinstance(payload, dict):
            return payload, None, body_problem("Input should be a valid dictionary", "dict_type")
        try:
            return payload, model.model_validate(payload), None
        except ValidationError as exc:
            return payload, None, validation_detail(exc)

    def _status(self, job: Job, logs: bool) -> Response:
        body = status_body(job, self.scheduler.position(job), logs=logs)
        code = 200 if job.state is JobState.COMPLETED else 202
        return JSONResponse(body, status_code=code, headers={"x-fal-request-id": job.request_id})

    def _stream(self, job: Job, logs: bool) -> Response:
        headers = {
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            "x-fal-request-id": job.request_id,
        }
        if self.stream_connection_close:
            headers["Connection"] = "close"
        return StreamingResponse(
            self._events(job, logs), media_type="text/event-stream", headers=headers
        )

    async def _events(self, job: Job, logs: bool) -> AsyncIterator[str]:
        """One ``data:`` event per status change, keep-alive comments, end after COMPLETED."""
        last = ""
        next_keepalive = time.monotonic() + self.keepalive_interval
        while True:
            pulse = self.scheduler.pulse()
            text = json.dumps(status_body(job, self.scheduler.position(job), logs=logs))
            if text != last:
                last = text
                yield f"data: {text}\n\n"
            if job.state is JobState.COMPLETED or self.scheduler.closed:
                return
            remaining = next_keepalive - time.monotonic()
            if remaining <= 0:
                yield ": keep-alive\n\n"
                next_keepalive = time.monotonic() + self.keepalive_interval
                continue
            await self.scheduler.wait(pulse, remaining)

    async def _run_sync(self, request: Request, segments: list[str]) -> Response:
        """fal's synchronous shape (``POST https://fal.run/<app>``, here ``POST /run/<app>``):
        the job is queued as any other, and the reply is its result once it is done."""
        if request.method != "POST":
            return JSONResponse({"detail": "Method Not Allowed"}, status_code=405)
        accepted = await self._route(request, "submit", segments)
        if accepted.status_code != 200 or not isinstance(accepted, JSONResponse):
            return accepted
        request_id = json.loads(bytes(accepted.body)).get("request_id")
        job = self.scheduler.jobs.get(str(request_id))
        if job is None:  # pragma: no cover - a job just accepted is always there
            return JSONResponse({"detail": "Request not found"}, status_code=404)
        deadline = time.monotonic() + SYNC_TIMEOUT
        while True:
            pulse = self.scheduler.pulse()  # taken before the state is read
            if job.state is JobState.COMPLETED:
                break
            if time.monotonic() > deadline:
                return JSONResponse({"detail": "Request timed out"}, status_code=504)
            await self.scheduler.wait(pulse, 1.0)
        return self._result(job)

    def _result(self, job: Job) -> Response:
        headers = {"x-fal-request-id": job.request_id}
        outcome = job.outcome
        if job.state is not JobState.COMPLETED or outcome is None:
            detail = {"detail": "Request is still in progress"}
            return JSONResponse(detail, status_code=400, headers=headers)
        if self.scheduler.is_expired(job):
            detail = {"detail": "Request result has expired"}
            return JSONResponse(detail, status_code=404, headers=headers)
        headers.update(outcome.headers)
        return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)

    def _cancel(self, job: Job) -> Response:
        status = self.scheduler.cancel(job)
        code = 400 if status == "ALREADY_COMPLETED" else 202
        return JSONResponse({"status": status}, status_code=code)

    async def _file(self, request_id: str, name: str) -> Response:
        stem, _, extension = name.partition(".")
        spec = self.store.spec(request_id, int(stem)) if stem.isdigit() else None
        if spec is None or extension != spec.output_format:
            return JSONResponse({"detail": "File not found"}, status_code=404)
        data = await self.store.image(request_id, spec.index, spec)
        return Response(
            data,
            media_type=content_type(spec.output_format),
            headers={"Cache-Control": "public, max-age=86400"},
        )


def _decoded_size(data: bytes) -> tuple[int, int] | None:
    """The size of an image Pillow decodes (header only), or None."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    if width * height > _MAX_IMAGE_PIXELS:
        return None
    return int(width), int(height)


def build_app(
    *,
    api_key: str,
    workers: int = 2,
    seconds_per_step: float = 0.08,
    result_ttl: float = 3600.0,
    keepalive_interval: float = 15.0,
    public_url: str | None = None,
    lora_urls: LoraURLs = "any",
    stream_connection_close: bool = False,
) -> EmulatorApp:
    """An emulator app to serve in-process, e.g. ``httpx.ASGITransport(app=build_app(...))``.

    Everything but dropped connections works without a socket (a drop needs the real one: use
    `Emulator`). Faults go through ``app.faults.add(Fault(...))``; the jobs run on the loop
    that serves the first request.
    """
    store = FileStore()
    scheduler = Scheduler(
        workers=workers,
        seconds_per_step=seconds_per_step,
        result_ttl=result_ttl,
        produce=functools.partial(produce, store),
    )
    return EmulatorApp(
        api_key=api_key,
        scheduler=scheduler,
        store=store,
        faults=FaultBook(),
        transports={},
        keepalive_interval=keepalive_interval,
        public_url=public_url,
        lora_urls=lora_urls,
        stream_connection_close=stream_connection_close,
    )
