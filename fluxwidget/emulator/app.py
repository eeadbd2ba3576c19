"""The emulator's ASGI app: fal's queue protocol for ``fal-ai/flux-lora``.

Routes (base = the emulator's URL)::

    POST /fal-ai/flux-lora[/{subpath}]                submit (any subpath; ?fal_webhook ignored)
    GET  /fal-ai/flux-lora/requests/{id}/status       status (?logs=1|0|true|false)
    GET  /fal-ai/flux-lora/requests/{id}/status/stream  Server-Sent Events
    GET  /fal-ai/flux-lora/requests/{id}              result
    PUT  /fal-ai/flux-lora/requests/{id}/cancel       cancel
    GET  /files/{id}/{index}.{jpeg|png}               image download (no auth, like a CDN)
    GET  /v1/models/pricing?endpoint_id=...           fal's platform API: the unit price

Choices where fal's behaviour is not documented:

- result before completion: ``400 {"detail": "Request is still in progress"}``;
- result of a cancelled job: ``400 {"detail": "Request was cancelled"}`` (its status is
  ``COMPLETED`` with ``error: "Request was cancelled"``, ``error_type: "request_cancelled"``);
- expired result: ``404 {"detail": "Request result has expired"}``;
- cancel of a finished job: ``400 {"status": "ALREADY_COMPLETED"}``;
- invalid input is accepted on submit; the job completes with an error and its result answers
  ``422`` with fal's ``detail`` list;
- a submit body over `MAX_SUBMIT_BYTES` is refused with ``413``, and JSON nested deeper than
  `MAX_JSON_DEPTH` with ``422`` (a body problem), before any job exists. Only the submit
  route is capped: it is the only one whose body the emulator reads as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

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
from fluxwidget.emulator.outputs import FileStore, produce
from fluxwidget.emulator.protocol import (
    body_problem,
    status_body,
    submit_body,
    validation_detail,
)
from fluxwidget.emulator.render import content_type
from fluxwidget.schema import ENDPOINT_ID, FluxLoraInput

AUTH_FAILED = {"detail": "No user found for Key ID and Secret"}
MAX_SUBMIT_BYTES = 1 << 20
"""The largest submit body the emulator reads (1 MiB): a larger one is answered 413."""
MAX_JSON_DEPTH = 32
"""The deepest nesting of objects and lists a submit body may have: deeper is answered 422."""
PRICE_PER_MEGAPIXEL = 0.035
"""flux-lora's documented price, served by the emulator's pricing call."""
_METHODS = {
    "submit": "POST",
    "status": "GET",
    "stream": "GET",
    "result": "GET",
    "cancel": "PUT",
    "file": "GET",
}
_TAILS = {
    (): "result",
    ("status",): "status",
    ("status", "stream"): "stream",
    ("cancel",): "cancel",
}


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


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
        stream_connection_close: bool = False,
    ) -> None:
        self._api_key = api_key
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
        self.submit_count = 0
        self.closing = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        call = (scope["method"], scope["path"])
        logged = False

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
        route = _route_of(segments)
        if route is None:
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        if request.method != _METHODS[route]:
            return JSONResponse({"detail": "Method Not Allowed"}, status_code=405)
        fault = self.faults.take(route)
        faulted = await self._fault(fault, request)
        if faulted is not None:
            return faulted
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
        raw = await _read_capped(request, self.max_submit_bytes)
        if raw is None:
            limit = f"{self.max_submit_bytes:,} bytes"
            detail = f"Request body is too large (the limit is {limit})"
            return JSONResponse({"detail": detail}, status_code=413)
        payload, data, problems = self._parse(raw, self.max_json_depth)
        if problems is not None and problems[0].get("type") == "json_too_deep":
            return JSONResponse({"detail": problems}, status_code=422)
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
        raw: bytes, max_depth: int = MAX_JSON_DEPTH
    ) -> tuple[Any, FluxLoraInput | None, list[dict[str, Any]] | None]:
        """The payload, and either the validated input or fal's 422 detail list."""
        too_deep = body_problem(f"JSON nested deeper than {max_depth} levels", "json_too_deep")
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
            return payload, FluxLoraInput.model_validate(payload), None
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


def build_app(
    *,
    api_key: str,
    workers: int = 2,
    seconds_per_step: float = 0.08,
    result_ttl: float = 3600.0,
    keepalive_interval: float = 15.0,
    public_url: str | None = None,
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
        stream_connection_close=stream_connection_close,
    )
