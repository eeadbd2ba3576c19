"""HTTP plumbing: one httpx.AsyncClient per event loop, a concurrency limit, retries, SSE.

httpx clients are bound to the loop they were first used on, so each loop (the kernel's, or a
worker thread's for `generate_sync`) gets its own client and its own semaphores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import EventSource, aconnect_sse

from .retries import RetryableResponse, RetryPolicy, retrying, should_retry_response

__all__ = ["Transport"]

log = logging.getLogger("fluxwidget.client")


@dataclass
class _LoopState:
    http: httpx.AsyncClient
    calls: asyncio.Semaphore
    streams: asyncio.Semaphore


class Transport:
    """Sends requests with the auth header, the concurrency limit and the retry rules."""

    def __init__(
        self,
        *,
        auth_header: str | None,
        timeout: httpx.Timeout,
        stream_read_timeout: float,
        max_concurrency: int,
        max_streams: int,
        retry: RetryPolicy,
    ) -> None:
        self._auth_header = auth_header
        self._timeout = timeout
        self._stream_timeout = httpx.Timeout(timeout.connect, read=stream_read_timeout)
        self._max_concurrency = max_concurrency
        self._max_streams = max_streams
        self.retry = retry
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Transport(max_concurrency={self._max_concurrency})"

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._states.get(loop)
            if state is None or state.http.is_closed:
                limits = httpx.Limits(
                    max_connections=self._max_concurrency + self._max_streams,
                    max_keepalive_connections=self._max_concurrency,
                )
                state = _LoopState(
                    http=httpx.AsyncClient(timeout=self._timeout, limits=limits),
                    calls=asyncio.Semaphore(self._max_concurrency),
                    streams=asyncio.Semaphore(self._max_streams),
                )
                self._states[loop] = state
            return state

    def _headers(self, headers: dict[str, str] | None, auth: bool) -> dict[str, str]:
        merged = {"Accept": "application/json", **(headers or {})}
        if auth and self._auth_header:
            merged["Authorization"] = self._auth_header
        return merged

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        submit: bool = False,
        auth: bool = True,
    ) -> httpx.Response:
        """Send with retries; return the final reply (maybe an error status) or raise httpx's
        transport error when the attempts ran out or a retry was not safe."""
        state = self._state()
        sent_headers = self._headers(headers, auth)
        try:
            async for attempt in retrying(self.retry, submit=submit):
                with attempt:
                    async with state.calls:
                        response = await state.http.request(
                            method, url, json=json, params=params, headers=sent_headers
                        )
                    log.debug("%s %s -> %d", method, url, response.status_code)
                    if response.is_error and should_retry_response(response, submit=submit):
                        raise RetryableResponse(response)
                    return response
        except RetryableResponse as exc:
            return exc.response  # attempts ran out: the caller turns it into a FalError
        raise AssertionError("unreachable: tenacity re-raises when it gives up")

    @contextlib.asynccontextmanager
    async def stream(
        self, url: str, *, params: dict[str, str] | None = None
    ) -> AsyncIterator[EventSource | None]:
        """An SSE stream, or None when every stream slot is taken (the caller polls)."""
        state = self._state()
        if state.streams.locked():
            yield None
            return
        async with (
            state.streams,
            aconnect_sse(
                state.http,
                "GET",
                url,
                params=params,
                headers=self._headers(None, auth=True),
                timeout=self._stream_timeout,
            ) as source,
        ):
            yield source

    async def aclose(self) -> None:
        """Close the httpx client of the running loop (others close on their own loop)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._states.pop(loop, None)
        if state is not None:
            await state.http.aclose()
