"""A submitted request: its status updates (SSE stream, polling fallback), result and cancel."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx
from httpx_sse import SSEError

from ..errors import (
    CancelledError,
    FalError,
    NotFoundError,
    RequestTimeoutError,
    ResultExpiredError,
    ValidationFailedError,
)
from ..journal import Journal
from ..schema import FluxLoraInput, FluxLoraOutput
from .status import Completed, InProgress, Queued, StatusUpdate, parse_status

if TYPE_CHECKING:
    from .core import FluxClient

__all__ = ["RequestHandle", "UpdateCallback", "is_final_error"]

log = logging.getLogger("fluxwidget.client")

UpdateCallback = Callable[[StatusUpdate], Awaitable[None] | None]


class _StreamUnusable(Exception):
    """The server answered the status stream with something other than a full stream."""


_STREAM_FAILURES = (
    _StreamUnusable,
    httpx.TransportError,
    SSEError,
    json.JSONDecodeError,
    ValueError,
)


def _fingerprint(update: StatusUpdate) -> tuple[Any, ...]:
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
        client: FluxClient,
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
        self.billable_units: float | None = None
        """``x-fal-billable-units`` of the result reply, when the server sent it."""
        self._cancel_requested = False

    def __repr__(self) -> str:
        state = "completed" if self.completed else "pending"
        return f"RequestHandle({self.request_id!r}, {state})"

    def _error(self, response: httpx.Response) -> FalError:
        return self._client._error(
            response, request_id=self.request_id, completed=bool(self.completed)
        )

    async def record(self, event: str, **fields: Any) -> None:
        """Append an event about this request to its journal (fsynced, in a thread)."""
        if self._journal is not None:
            merged = {**self._journal_fields, **fields}
            await asyncio.to_thread(self._journal.append, event, self.request_id, **merged)

    async def status(self, *, logs: bool = True) -> StatusUpdate:
        """The current status (one GET)."""
        response = await self._client._transport.request(
            "GET", self.status_url, params={"logs": "1" if logs else "0"}
        )
        if response.status_code == 404 and self._cancel_requested:
            raise CancelledError(
                "the job was cancelled", status_code=404, request_id=self.request_id
            )
        if response.is_error:
            raise self._error(response)
        update = parse_status(response.json(), self.request_id)
        if isinstance(update, Completed):
            self.completed = update
        return update

    async def _stream(self, logs: bool) -> AsyncIterator[StatusUpdate]:
        """Updates from the SSE stream. Yields nothing when every stream slot is taken; raises
        `_StreamUnusable` when the server will not stream (the caller then only polls)."""
        params = {"logs": "1" if logs else "0"}
        async with self._client._transport.stream(
            f"{self.status_url}/stream", params=params
        ) as source:
            if source is None:
                return
            if source.response.status_code in (401, 403):
                await source.response.aread()
                raise self._error(source.response)
            if source.response.status_code != 200:
                raise _StreamUnusable(f"HTTP {source.response.status_code}")
            async for event in source.aiter_sse():
                if not event.data:
                    continue
                update = parse_status(json.loads(event.data), self.request_id)
                if isinstance(update, Completed):
                    self.completed = update
                yield update
                if isinstance(update, Completed):
                    return
            raise _StreamUnusable("the stream ended before COMPLETED")

    async def updates(self, *, logs: bool = True) -> AsyncIterator[StatusUpdate]:
        """Status updates as they change, ending with `Completed`.

        Uses the SSE status stream whenever a stream slot is free (a job that had to poll moves
        to the stream as soon as one frees up), and polls with a bounded backoff otherwise, or
        for good once the stream has failed for this request.
        """
        if self.completed is not None:
            yield self.completed
            return
        seen: tuple[Any, ...] | None = None
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
                    log.info("status stream unusable (%s); polling", exc or type(exc).__name__)
                    stream_ok = False
            update = await self.status(logs=logs)
            if _fingerprint(update) != seen:
                seen = _fingerprint(update)
                interval = self._client.poll_interval
                yield update
            else:
                interval = min(interval * 1.5, self._client.max_poll_interval)
            if isinstance(update, Completed):
                return
            await asyncio.sleep(interval)

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
        """GET the result now; raises the job's error as a FalError subclass."""
        response = await self._client._transport.request("GET", self.response_url)
        if response.is_error:
            error = self._error(response)
            if isinstance(error, NotFoundError) and self._cancel_requested:
                error = CancelledError(
                    "the job was cancelled", status_code=404, request_id=self.request_id
                )
            if isinstance(error, CancelledError):
                await self.record("cancelled", error=str(error))
            else:  # a transient error (5xx, ...) leaves the job to be collected again later
                await self.record("failed", error=str(error), final=is_final_error(error))
            raise error
        output = FluxLoraOutput.model_validate(response.json())
        units = response.headers.get("x-fal-billable-units")
        try:
            self.billable_units = float(units) if units is not None else None
        except ValueError:
            self.billable_units = None
        # the image URLs (not inline data: URIs) stay on fal's CDN after the result expires
        urls = [image.url for image in output.images if not image.url.startswith("data:")]
        await self.record("completed", image_urls=urls, seed=output.seed)
        return output

    async def result(self, on_update: UpdateCallback | None = None) -> FluxLoraOutput:
        """Wait for completion (if needed), then return the output."""
        if self.completed is None:
            await self.wait(on_update)
        return await self.fetch_result()

    async def cancel(self) -> str:
        """Ask fal to cancel; returns ``CANCELLATION_REQUESTED``, ``ALREADY_COMPLETED``, ...

        A queued job is removed; a running one is signalled and may still finish.
        """
        response = await self._client._transport.request("PUT", self.cancel_url)
        try:
            body = response.json()
        except ValueError:
            body = {}
        status = body.get("status") if isinstance(body, dict) else None
        if response.status_code in (401, 403) or (response.is_error and not status):
            raise self._error(response)
        outcome = str(status or "OK")
        if outcome in ("CANCELLATION_REQUESTED", "OK"):
            self._cancel_requested = True
            await self.record("cancel_requested")
        return outcome

    async def cancel_quietly(self, timeout: float = 5.0) -> str | None:
        """Best-effort cancel that never raises (used when a wait is abandoned)."""
        try:
            return await asyncio.wait_for(self.cancel(), timeout)
        except (FalError, httpx.HTTPError, asyncio.TimeoutError) as exc:
            log.info("best-effort cancel of %s failed: %s", self.request_id, type(exc).__name__)
            return None
