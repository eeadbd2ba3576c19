"""A submitted request: its status updates (SSE stream, polling fallback), result and cancel.

A handle talks to its client only through `HandleBackend` (in `fluxwidget.client.protocols`:
the transport, the error mapping, the journal and the polling settings), so it can be driven by
any client that offers those.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx

from ..errors import (
    AuthenticationError,
    FalError,
    FluxwidgetError,
    JobCancelledError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    RequestTimeoutError,
    ResultExpiredError,
    ResultNotReadyError,
    ServerError,
    TransportError,
    ValidationFailedError,
)
from ..schema import FluxLoraInput, FluxLoraOutput
from .journal import Journal
from .protocols import HandleBackend
from .responses import parse_result, read_object
from .scheduling import StreamSlot, poll_delay
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

__all__ = ["RequestHandle", "UpdateCallback", "is_final_error"]

log = logging.getLogger("fluxwidget.client")

UpdateCallback = Callable[[StatusUpdate], Awaitable[None] | None]
E = TypeVar("E", bound=BaseException)


class _StreamUnusable(FluxwidgetError):
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


_END = object()
"""`_next_event`: the stream ended."""
_PREEMPTED = object()
"""`_next_event`: a job with a better claim took the stream slot."""
_DRAIN_SECONDS = 0.02
"""How long the rest of a stream after COMPLETED may take to arrive (it normally comes with the
event): past that the connection is closed rather than kept for the result call."""


async def _next_event(events: AsyncIterator[str | None], slot: StreamSlot) -> object:
    """The next event's data (or `KEEPALIVE`), `_END`, or `_PREEMPTED` — a running job's slot is
    never taken, so only a queued job's read also watches for that."""
    if slot.running:
        try:
            return await anext(events)
        except StopAsyncIteration:
            return _END
    read: asyncio.Future[str | None] = asyncio.ensure_future(anext(events))
    watched: set[asyncio.Future[Any]] = {read, slot.preempted}
    try:
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        await _abandon(read)
        raise
    if read.done():
        try:
            return read.result()
        except StopAsyncIteration:
            return _END
    await _abandon(read)
    return _PREEMPTED


async def _abandon(read: asyncio.Future[Any]) -> None:
    read.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await read


async def _drain(events: AsyncIterator[str | None]) -> bool:
    """Read what is left of a stream, briefly; True when it ended (a stream read to its end
    leaves its connection in the pool)."""

    async def rest() -> None:
        async for _data in events:
            pass

    try:
        await asyncio.wait_for(rest(), _DRAIN_SECONDS)
    except (asyncio.TimeoutError, Exception):
        return False
    return True


def _keeps_connection(response: httpx.Response) -> bool:
    """Whether the connection that carried `response` stays open for another request: not when
    the server said ``Connection: close`` (the result then goes to the calls' pool, whose
    connection is warm, rather than opening a new one in the streams' pool)."""
    tokens = {t.strip().lower() for t in response.headers.get("connection", "").split(",")}
    if response.http_version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def _fingerprint(update: StatusUpdate) -> tuple[Any, ...]:
    if isinstance(update, Waiting):
        return ("waiting", update.seconds)
    if isinstance(update, Queued):
        return ("queued", update.position)
    if isinstance(update, InProgress):
        return ("running", len(update.logs))
    return ("completed",)


def is_final_error(error: BaseException) -> bool:
    """True for a job's error that asking again cannot change: the server refused the input
    (422), the job never started in time (504 user timeout), or its result is gone."""
    return isinstance(error, (ValidationFailedError, RequestTimeoutError, ResultExpiredError))


class RequestHandle:
    """One queued request, by id. Get it from `FluxClient.submit` or `FluxClient.handle`."""

    def __init__(
        self,
        client: HandleBackend,
        request_id: str,
        *,
        status_url: str,
        response_url: str,
        cancel_url: str,
        input: FluxLoraInput | None = None,
        journal: Journal | None = None,
        journal_fields: dict[str, Any] | None = None,
    ) -> None:
        self._client = client
        self._journal = journal
        self._journal_fields = dict(journal_fields or {})
        self.request_id = request_id
        self.status_url = status_url
        self.response_url = response_url
        self.cancel_url = cancel_url
        self.input = input
        self.completed: Completed | None = None
        self._last: JobStatus | None = None
        self._warm_stream = False
        """The status stream ended cleanly: its connection waits in the stream pool."""
        self.billable_units: float | None = None
        """``x-fal-billable-units`` of the result reply, when the server sent it."""
        self._cancel_requested = False

    def __repr__(self) -> str:
        state = "completed" if self.completed else "pending"
        return f"RequestHandle({self.request_id!r}, {state})"

    async def record(self, event: str, **fields: Any) -> None:
        """Append an event about this request to its journal (fsynced before returning).

        ``completed`` is written in the background (`Journal.append_soon`), off the path to the
        result: lost in a crash, it only leaves the job pending, and recovery fetches it again.
        """
        if self._journal is not None:
            merged = {**self._journal_fields, **fields}
            if event == "completed":
                self._journal.append_soon(event, self.request_id, **merged)
            else:
                await self._journal.write(event, self.request_id, **merged)

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

    def _observe(self, update: JobStatus, slot: StreamSlot | None = None) -> None:
        """Remember where the job stands (stream priority, polling by queue position)."""
        self._last = update
        pace = self._client.http.queue_pace
        position = update.position if isinstance(update, Queued) else None
        if position is not None:
            pace.observe(self.request_id, position)
        else:
            pace.forget(self.request_id)
        if slot is not None:
            slot.seen(running=not isinstance(update, Queued), position=position)

    def _stream_slot(self) -> StreamSlot | None:
        last = self._last
        if isinstance(last, Queued):
            return self._client.http.stream_slot(running=False, position=last.position)
        return self._client.http.stream_slot(running=last is not None)

    async def _stream(self, logs: bool, slot: StreamSlot) -> AsyncIterator[StatusUpdate]:
        """Updates from the SSE stream held in `slot`; ends without `Completed` when a job with a
        better claim took the slot (the caller polls); raises `_StreamUnusable` when the server
        will not stream (the caller then only polls).

        While the stream brings keep-alives but no status event, a status call checks the job
        every `Limits.status_check_interval` seconds (a finished job is noticed then, not only
        when the server closes the stream). After COMPLETED the rest of the stream is read, so
        its connection goes back to the pool warm and the result call reuses it.
        """
        params = {"logs": "1" if logs else "0"}
        http = self._client.http
        check_every = http.limits.status_check_interval
        final: Completed | None = None
        async with http.stream(f"{self.status_url}/stream", params=params, slot=slot) as source:
            assert source is not None  # a slot was given
            code = source.response.status_code
            if code in (401, 403):
                raise self._error(await http.read_error_body(source.response))
            if code != 200:
                raise _StreamUnusable(f"HTTP {code}")
            last_news = time.monotonic()
            events = source.events()
            while True:
                data = await _next_event(events, slot)
                if data is _PREEMPTED:
                    return
                if data is _END:
                    raise _StreamUnusable("the stream ended before COMPLETED")
                if data is KEEPALIVE:
                    if time.monotonic() - last_news < check_every:
                        continue
                    update = await self.status(logs=logs)
                else:
                    try:
                        parsed = json.loads(str(data))
                    except (ValueError, RecursionError):
                        raise ProtocolError("status stream", "an event is not valid JSON") from None
                    update = self._parse(parsed, "status stream")
                last_news = time.monotonic()
                self._observe(update, slot)
                if isinstance(update, Completed):
                    if data is not KEEPALIVE:
                        drained = await _drain(events)
                        self._warm_stream = drained and _keeps_connection(source.response)
                    final = update
                    break
                yield update
        if final is not None:
            yield final

    async def updates(self, *, logs: bool = True) -> AsyncIterator[StatusUpdate]:
        """Status updates as they change, ending with `Completed`.

        Uses the SSE status stream whenever it gets a stream slot (running jobs first; a job
        that had to poll asks again at each poll), and polls otherwise, or for good once the
        stream has failed for this request: a running job every `poll_interval` seconds, backing
        off to `max_poll_interval` while nothing changes; a queued job by its queue position
        (see `scheduling.poll_delay`). When a poll is rate limited, a `Waiting` update says how
        long the client waits (``Retry-After``) before asking again.
        """
        if self.completed is not None:
            yield self.completed
            return
        client = self._client
        seen: tuple[Any, ...] | None = None
        limited = 0
        stream_ok = client.use_sse
        interval = client.poll_interval
        try:
            while True:
                slot = self._stream_slot() if stream_ok else None
                if slot is not None:
                    try:
                        async for update in self._stream(logs, slot):
                            if _fingerprint(update) != seen:
                                seen = _fingerprint(update)
                                yield update
                            if isinstance(update, Completed):
                                return
                    except _STREAM_FAILURES as exc:
                        log.info("status stream unusable (%s); polling", type(exc).__name__)
                        stream_ok = False
                    finally:
                        slot.release()
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
                self._observe(update)
                if _fingerprint(update) != seen:
                    seen = _fingerprint(update)
                    interval = client.poll_interval
                    yield update
                else:
                    interval = min(interval * 1.5, client.max_poll_interval)
                if isinstance(update, Completed):
                    return
                await asyncio.sleep(
                    poll_delay(
                        position=update.position if isinstance(update, Queued) else None,
                        interval=interval,
                        poll_interval=client.poll_interval,
                        max_queue_poll_interval=client.max_queue_poll_interval,
                        pace=client.http.queue_pace.rate,
                    )
                )
        finally:
            client.http.queue_pace.forget(self.request_id)

    def _rate_limit_wait(self, exc: RateLimitError, times: int, interval: float) -> float:
        """How long to wait after a 429 while polling; re-raises it when the server asks for
        more than `RetryPolicy.max_retry_after` or the attempts ran out."""
        policy = self._client.http.retry
        wait = exc.retry_after if exc.retry_after is not None else interval * 2**times
        if wait > policy.max_retry_after or times >= policy.max_attempts:
            raise exc
        return wait

    async def wait(
        self, on_update: UpdateCallback | None = None, *, logs: bool | None = None
    ) -> Completed:
        """Wait for completion, calling `on_update` (sync or async) with each update.

        `logs` asks fal for the job's log lines in the updates; by default only when there is an
        `on_update` to read them (without them a stream carries a few events, not one per step).
        """
        async for update in self.updates(logs=on_update is not None if logs is None else logs):
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
        after_stream, self._warm_stream = self._warm_stream, False
        response = await self._client.http.request(
            "result", "GET", self.response_url, after_stream=after_stream
        )
        if response.is_error:
            error = self._error(response)
            if isinstance(error, NotFoundError) and self._cancel_requested:
                error = self._cancelled()
            if not self._transient(error, response):
                await self.record(
                    "cancelled" if isinstance(error, JobCancelledError) else "failed",
                    error=str(error),
                )
            raise error
        try:
            output = parse_result(read_object(response, "result"))
        except ProtocolError as exc:
            exc.request_id = self.request_id
            raise
        units = response.headers.get("x-fal-billable-units")
        try:
            self.billable_units = float(units) if units is not None else None
        except ValueError:
            self.billable_units = None
        # the image URLs (not inline data: URIs) stay on fal's CDN after the result expires
        urls = [image.url for image in output.images if not image.url.startswith("data:")]
        await self.record("completed", image_urls=urls, seed=output.seed)
        return output

    @staticmethod
    def _transient(error: FalError, response: httpx.Response) -> bool:
        if isinstance(error, ServerError):
            return "x-fal-request-id" not in response.headers  # else: the model's own error
        return isinstance(error, _TRANSIENT)

    async def result(
        self, on_update: UpdateCallback | None = None, *, logs: bool | None = None
    ) -> FluxLoraOutput:
        """Wait for completion (if needed), then return the output (`logs` as in `wait`)."""
        if self.completed is None:
            await self.wait(on_update, logs=logs)
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
            await self.record("cancel_requested")
        return self._client.redact(outcome)

    async def cancel_quietly(self, timeout: float = 5.0) -> str | None:
        """Best-effort cancel that never raises (used when a wait is abandoned)."""
        try:
            return await asyncio.wait_for(self.cancel(), timeout)
        except (FalError, asyncio.TimeoutError) as exc:
            log.info("best-effort cancel of %s failed: %s", self.request_id, type(exc).__name__)
            return None
