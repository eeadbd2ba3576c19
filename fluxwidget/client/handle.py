"""A submitted request: its status updates (SSE stream, polling fallback), result and cancel.

A handle talks to its client only through `ClientPort` (the transport, the error mapping, the
journal and the polling settings), so it can be driven by any client that offers those.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

import httpx

from ..errors import (
    AuthenticationError,
    FalError,
    JobCancelledError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    ResultNotReadyError,
    ServerError,
    TransportError,
)
from ..schema import FluxLoraInput, FluxLoraOutput
from .responses import parse_result, read_object
from .sse import KEEPALIVE
from .status import (
    Completed,
    InProgress,
    JobStatus,
    Queued,
    StatusUpdate,
    Waiting,
    parse_status,
)
from .transport import Transport

__all__ = ["ClientPort", "RequestHandle", "UpdateCallback"]

log = logging.getLogger("fluxwidget.client")

UpdateCallback = Callable[[StatusUpdate], Awaitable[None] | None]
E = TypeVar("E", bound=BaseException)


class ClientPort(Protocol):
    """What a `RequestHandle` needs from its client (`FluxClient` provides it)."""

    @property
    def http(self) -> Transport:
        """Sends the calls (retries, caps, the key)."""

    @property
    def use_sse(self) -> bool: ...

    @property
    def poll_interval(self) -> float: ...

    @property
    def max_poll_interval(self) -> float: ...

    def error_for(
        self, response: httpx.Response, *, request_id: str | None = None, completed: bool = False
    ) -> FalError:
        """The typed error for an error reply, the key masked."""

    def scrub(self, exc: E) -> E:
        """The exception with the key masked in every attribute."""

    def redact(self, text: str) -> str:
        """The text with the key masked."""

    async def record(self, event: str, request_id: str, **fields: Any) -> None:
        """Append an event to the journal (when there is one)."""


class _StreamUnusable(Exception):
    """The server answered the status stream with something other than a full stream."""


# A stream that fails in any of these ways is replaced by polling (the status call then
# reports a lasting problem as a typed error).
_STREAM_FAILURES = (_StreamUnusable, TransportError, ProtocolError)

# Errors of the result call that say nothing final about the job: it stays pending in the
# journal, so `recover` can fetch it later.
_TRANSIENT = (
    AuthenticationError,
    RateLimitError,
    ResultNotReadyError,
    TransportError,
    ProtocolError,
)


def _fingerprint(update: StatusUpdate) -> tuple[Any, ...]:
    if isinstance(update, Waiting):
        return ("waiting", update.seconds)
    if isinstance(update, Queued):
        return ("queued", update.position)
    if isinstance(update, InProgress):
        return ("running", len(update.logs))
    return ("completed",)


class RequestHandle:
    """One queued request, by id. Get it from `FluxClient.submit` or `FluxClient.handle`."""

    def __init__(
        self,
        client: ClientPort,
        request_id: str,
        *,
        status_url: str,
        response_url: str,
        cancel_url: str,
        input: FluxLoraInput | None = None,
    ) -> None:
        self._client = client
        self.request_id = request_id
        self.status_url = status_url
        self.response_url = response_url
        self.cancel_url = cancel_url
        self.input = input
        self.completed: Completed | None = None
        self._cancel_requested = False

    def __repr__(self) -> str:
        state = "completed" if self.completed else "pending"
        return f"RequestHandle({self.request_id!r}, {state})"

    def _error(self, response: httpx.Response) -> FalError:
        return self._client.error_for(
            response, request_id=self.request_id, completed=bool(self.completed)
        )

    def _cancelled(self) -> JobCancelledError:
        return JobCancelledError(
            "the job was cancelled", status_code=404, request_id=self.request_id
        )

    def _parse(self, data: Any, call: str) -> JobStatus:
        try:
            update = parse_status(data, self.request_id, call)
        except ProtocolError as exc:
            exc.request_id = self.request_id
            raise self._client.scrub(exc) from None
        if isinstance(update, Completed):
            self.completed = update
        return update

    async def status(self, *, logs: bool = True) -> JobStatus:
        """The current status (one GET; a 5xx, a 429 or a dropped connection is retried)."""
        return await self._status(logs, rate_limits=True)

    async def _status(self, logs: bool, *, rate_limits: bool) -> JobStatus:
        response = await self._client.http.request(
            "status",
            "GET",
            self.status_url,
            params={"logs": "1" if logs else "0"},
            any_5xx=True,
            rate_limits=rate_limits,
        )
        if response.status_code == 404 and self._cancel_requested:
            raise self._cancelled()
        if response.is_error:
            raise self._error(response)
        try:
            body = read_object(response, "status")
        except ProtocolError as exc:
            exc.request_id = self.request_id
            raise
        return self._parse(body, "status")

    async def _stream(self, logs: bool) -> AsyncIterator[StatusUpdate]:
        """Updates from the SSE stream. Yields nothing when every stream slot is taken; raises
        `_StreamUnusable` when the server will not stream (the caller then only polls).

        While the stream brings keep-alives but no status event, a status call checks the job
        every `Limits.status_check_interval` seconds (a finished job is noticed then, not only
        when the server closes the stream).
        """
        params = {"logs": "1" if logs else "0"}
        http = self._client.http
        check_every = http.limits.status_check_interval
        async with http.stream(f"{self.status_url}/stream", params=params) as source:
            if source is None:
                return
            code = source.response.status_code
            if code in (401, 403):
                raise self._error(await http.read_error_body(source.response))
            if code != 200:
                raise _StreamUnusable(f"HTTP {code}")
            last_news = time.monotonic()
            async for data in source.events():
                if data is KEEPALIVE:
                    if time.monotonic() - last_news < check_every:
                        continue
                    update = await self.status(logs=logs)
                else:
                    try:
                        parsed = json.loads(data)
                    except (ValueError, RecursionError):
                        raise ProtocolError("status stream", "an event is not valid JSON") from None
                    update = self._parse(parsed, "status stream")
                last_news = time.monotonic()
                yield update
                if isinstance(update, Completed):
                    return
            raise _StreamUnusable("the stream ended before COMPLETED")

    async def updates(self, *, logs: bool = True) -> AsyncIterator[StatusUpdate]:
        """Status updates as they change, ending with `Completed`.

        Uses the SSE status stream whenever a stream slot is free (a job that had to poll moves
        to the stream as soon as one frees up), and polls with a bounded backoff otherwise, or
        for good once the stream has failed for this request. When a poll is rate limited, a
        `Waiting` update says how long the client waits (``Retry-After``) before asking again.
        """
        if self.completed is not None:
            yield self.completed
            return
        seen: tuple[Any, ...] | None = None
        limited = 0
        stream_ok = self._client.use_sse
        interval = self._client.poll_interval
        while True:
            if stream_ok:
                try:
                    async for update in self._stream(logs):
                        if _fingerprint(update) != seen:
                            seen = _fingerprint(update)
                            yield update
                        if isinstance(update, Completed):
                            return
                except _STREAM_FAILURES as exc:
                    log.info("status stream unusable (%s); polling", type(exc).__name__)
                    stream_ok = False
            try:
                update = await self._status(logs, rate_limits=False)
            except RateLimitError as exc:
                limited += 1
                wait = self._rate_limit_wait(exc, limited, interval)
                yield Waiting(self.request_id, wait)
                seen = None  # the job's state is shown again after the wait
                await asyncio.sleep(wait)
                continue
            limited = 0
            if _fingerprint(update) != seen:
                seen = _fingerprint(update)
                interval = self._client.poll_interval
                yield update
            else:
                interval = min(interval * 1.5, self._client.max_poll_interval)
            if isinstance(update, Completed):
                return
            await asyncio.sleep(interval)

    def _rate_limit_wait(self, exc: RateLimitError, times: int, interval: float) -> float:
        """How long to wait after a 429 while polling; re-raises it when the server asks for
        more than `RetryPolicy.max_retry_after` or the attempts ran out."""
        policy = self._client.http.retry
        wait = exc.retry_after if exc.retry_after is not None else interval * 2**times
        if wait > policy.max_retry_after or times >= policy.max_attempts:
            raise exc
        return wait

    async def wait(self, on_update: UpdateCallback | None = None) -> Completed:
        """Wait for completion, calling `on_update` (sync or async) with each update."""
        async for update in self.updates():
            if on_update is not None:
                outcome = on_update(update)
                if inspect.isawaitable(outcome):
                    await outcome
        assert self.completed is not None
        return self.completed

    async def fetch_result(self) -> FluxLoraOutput:
        """GET the result now; raises the job's error as a FalError subclass.

        A final error (the job failed, was cancelled, its result expired) is journaled; a
        passing one (network, rate limit, an unreadable reply) leaves the job pending there.
        """
        response = await self._client.http.request("result", "GET", self.response_url)
        if response.is_error:
            error = self._error(response)
            if isinstance(error, NotFoundError) and self._cancel_requested:
                error = self._cancelled()
            if not self._transient(error, response):
                await self._client.record(
                    "cancelled" if isinstance(error, JobCancelledError) else "failed",
                    self.request_id,
                    error=str(error),
                )
            raise error
        try:
            output = parse_result(read_object(response, "result"))
        except ProtocolError as exc:
            exc.request_id = self.request_id
            raise
        # the image URLs (not inline data: URIs) stay on fal's CDN after the result expires
        urls = [image.url for image in output.images if not image.url.startswith("data:")]
        await self._client.record("completed", self.request_id, image_urls=urls, seed=output.seed)
        return output

    @staticmethod
    def _transient(error: FalError, response: httpx.Response) -> bool:
        if isinstance(error, ServerError):
            return "x-fal-request-id" not in response.headers  # else: the model's own error
        return isinstance(error, _TRANSIENT)

    async def result(self, on_update: UpdateCallback | None = None) -> FluxLoraOutput:
        """Wait for completion (if needed), then return the output."""
        if self.completed is None:
            await self.wait(on_update)
        return await self.fetch_result()

    async def cancel(self) -> str:
        """Ask fal to cancel; returns ``CANCELLATION_REQUESTED``, ``ALREADY_COMPLETED``, ...

        A queued job is removed; a running one is signalled and may still finish.
        """
        response = await self._client.http.request("cancel", "PUT", self.cancel_url)
        status: Any = None
        if response.content.strip():
            try:
                body = json.loads(response.content)
            except (ValueError, RecursionError):
                body = None
                if not response.is_error:
                    raise ProtocolError(
                        "cancel", "the reply is not valid JSON", request_id=self.request_id
                    ) from None
            status = body.get("status") if isinstance(body, dict) else None
            if status is not None and not isinstance(status, str):
                raise ProtocolError(
                    "cancel", "'status' is not a string", request_id=self.request_id
                )
        if response.status_code in (401, 403) or (response.is_error and not status):
            raise self._error(response)
        outcome = str(status or "OK")[:60]
        if outcome in ("CANCELLATION_REQUESTED", "OK"):
            self._cancel_requested = True
            await self._client.record("cancel_requested", self.request_id)
        return self._client.redact(outcome)

    async def cancel_quietly(self, timeout: float = 5.0) -> str | None:
        """Best-effort cancel that never raises (used when a wait is abandoned)."""
        try:
            return await asyncio.wait_for(self.cancel(), timeout)
        except (FalError, asyncio.TimeoutError) as exc:
            log.info("best-effort cancel of %s failed: %s", self.request_id, type(exc).__name__)
            return None
