"""HTTP plumbing: httpx clients per event loop, a concurrency limit, retries, caps, SSE.

This is the one place where httpx's exceptions become fluxwidget's (`TransportError`,
`ProtocolError`, `DownloadTooSlowError`). Every body is read as a stream and stopped at its cap,
so a server cannot make the client hold more than `Limits` allows.

httpx clients are bound to the loop they were first used on, so each loop (the kernel's, or a
worker thread's for `generate_sync`) gets its own clients (calls, status streams, image
downloads) and its own semaphores. An injected `transport` (e.g. ``httpx.ASGITransport``) is
shared by those clients. Image downloads check where they connect (`netguard`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from ..errors import DownloadTooSlowError, FalError, ProtocolError, ResponseTooLargeError
from ..errors import TransportError as FluxTransportError
from .limits import Limits
from .netguard import ConnectGuard
from .responses import TOO_LARGE, TRUNCATED
from .retries import RetryableResponse, RetryPolicy, retrying, should_retry_response
from .scheduling import QueuePace, StreamSlot, StreamSlots
from .sse import SSEReader
from .urls import URLPolicy

__all__ = ["Transport"]

log = logging.getLogger("fluxwidget.client")

_DROPPED_HEADERS = ("content-encoding", "content-length", "transfer-encoding")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


_SLICE = 256 * 1024
"""A raw body larger than this is written in slices of this size (see `_Slices`)."""


class _Slices:
    """A large raw body (an upload) handed to httpx in slices, so that neither h11 (which joins
    what it is given into one buffer) nor the socket's transport (which copies what the socket
    does not take at once) holds another copy of the whole body: the socket's flow control then
    paces the writes. Iterable again for each retry. Sent with an explicit Content-Length."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def release(self) -> None:
        """Let go of the body once the call is over: the finished request may live on in a
        reference cycle (the retry loop's state) until the garbage collector runs, and a part
        of an upload is megabytes."""
        self.data = b""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        view = memoryview(self.data)
        for start in range(0, len(view), _SLICE):
            yield bytes(view[start : start + _SLICE])


class SizedBody(Protocol):
    """A raw body read as it is sent (e.g. a file's range): its length in bytes, and its bytes
    in slices — again from the start for each retry."""

    def __len__(self) -> int: ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...


@dataclass
class _LoopState:
    http: httpx.AsyncClient
    """The calls' pool (submit, status, result, cancel, downloads)."""
    stream_http: httpx.AsyncClient
    """The status streams' pool; a stream read to its end leaves its connection here, warm for
    that job's result call."""
    download_http: httpx.AsyncClient
    """The image downloads' pool: each of its connections was checked by `ConnectGuard`, so a
    download never reuses one the URL policy did not see."""
    calls: asyncio.Semaphore
    streams: StreamSlots


async def _read_capped(response: httpx.Response, cap: int) -> tuple[bytes, bool]:
    """At most `cap` bytes of the (decoded) body, and whether there was more."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        if size + len(chunk) > cap:
            chunks.append(chunk[: cap - size])
            return b"".join(chunks), True
        size += len(chunk)
        chunks.append(chunk)
    return b"".join(chunks), False


def _host(url: str) -> str:
    return urlsplit(url).netloc or "the server"


class Transport:
    """Sends requests with the auth header, the concurrency limit, the retry rules and caps."""

    def __init__(
        self,
        *,
        auth_header: str | None,
        timeout: httpx.Timeout,
        max_concurrency: int,
        max_streams: int,
        retry: RetryPolicy,
        limits: Limits,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._auth_header = auth_header
        self._timeout = timeout
        self._max_concurrency = max_concurrency
        self._max_streams = max_streams
        self._inner = transport
        self.retry = retry
        self.limits = limits
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._ssl: ssl.SSLContext | None = None
        """One TLS context for every client of every loop (loading the CA bundle costs tens of
        milliseconds per context)."""
        self.queue_pace = QueuePace()
        """How fast this client's jobs have been moving up fal's queue (for polling by position)."""

    def __repr__(self) -> str:
        return f"Transport(max_concurrency={self._max_concurrency})"

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._states.get(loop)
            if state is None or any(
                http.is_closed for http in (state.http, state.stream_http, state.download_http)
            ):
                # Streams have their own pool, so a status call never scans dozens of stream
                # connections (httpcore walks every connection of a pool on each request).
                # Keep-alive equals each pool's size: httpcore counts idle and busy connections
                # alike against it, so a lower one closes a connection after each call. The
                # stream pool has room for the result calls that reuse its drained connections.
                calls = self._max_concurrency
                if self._ssl is None and self._inner is None:
                    self._ssl = httpx.create_ssl_context()
                verify: ssl.SSLContext | bool = self._ssl or True
                stream_pool = self._max_streams + self._max_concurrency

                def pool(size: int) -> httpx.AsyncClient:
                    limits = httpx.Limits(
                        max_connections=size,
                        max_keepalive_connections=size,
                        keepalive_expiry=self.limits.keepalive_expiry,
                    )
                    return httpx.AsyncClient(
                        timeout=self._timeout, verify=verify, limits=limits, transport=self._inner
                    )

                state = _LoopState(
                    http=pool(calls),
                    stream_http=pool(stream_pool),
                    download_http=pool(calls),
                    calls=asyncio.Semaphore(self._max_concurrency),
                    streams=StreamSlots(self._max_streams),
                )
                self._states[loop] = state
            return state

    def _headers(self, headers: dict[str, str] | None, auth: bool) -> dict[str, str]:
        merged = {"Accept": "application/json", **(headers or {})}
        if auth and self._auth_header:
            merged["Authorization"] = self._auth_header
        return merged

    # --- httpx's exceptions, mapped once ------------------------------------------------------

    def map_error(self, exc: httpx.HTTPError, call: str, *, submit: bool = False) -> FalError:
        """The fluxwidget error for an httpx exception met during `call`."""
        url = str(exc.request.url) if _has_request(exc) else ""
        where = _host(url)
        kind = type(exc).__name__
        if isinstance(exc, httpx.DecodingError):
            return ProtocolError(call, f"the body could not be decoded ({kind})")
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return FluxTransportError(f"{kind}: could not connect to {where} ({call})")
        if submit and not isinstance(exc, httpx.PoolTimeout):
            return FluxTransportError(
                f"{kind}: no reply to the submit: the server may have accepted (and billed) it, "
                "so it was not retried — look for it in your fal request history before "
                "submitting again",
                maybe_accepted=True,
            )
        if isinstance(exc, httpx.TimeoutException):
            return FluxTransportError(f"{kind}: {where} did not answer the {call} call in time")
        return FluxTransportError(f"{kind}: the {call} call to {where} failed ({kind})")

    # --- plain calls ----------------------------------------------------------------------------

    async def _send(
        self, http: httpx.AsyncClient, request: httpx.Request, max_bytes: int
    ) -> httpx.Response:
        response = await http.send(request, stream=True)
        try:
            cap = self.limits.max_error_bytes if response.is_error else max_bytes
            if not response.is_error and int(response.headers.get("content-length") or 0) > cap:
                body, cut = b"", True
            else:
                body, cut = await _read_capped(response, cap)
        finally:
            await response.aclose()
        headers = [(k, v) for k, v in response.headers.multi_items() if k not in _DROPPED_HEADERS]
        extensions: dict[str, Any] = {TRUNCATED: cut}
        if cut and not response.is_error:
            extensions[TOO_LARGE] = cap
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=body,
            request=request,
            extensions=extensions,
        )

    async def _send_within(
        self, http: httpx.AsyncClient, request: httpx.Request, deadline: float | None = None
    ) -> httpx.Response:
        """`_send` bounded by `deadline` (default `Limits.call_timeout`: a reply that trickles
        in byte by byte would otherwise keep each read just under the read timeout)."""
        limit = deadline if deadline is not None else self.limits.call_timeout
        try:
            return await asyncio.wait_for(
                self._send(http, request, self.limits.max_json_bytes), limit
            )
        except asyncio.TimeoutError:
            raise httpx.ReadTimeout(
                f"no complete reply within {limit:g} s", request=request
            ) from None

    async def request(
        self,
        call: str,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: bytes | SizedBody | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        deadline: float | None = None,
        submit: bool = False,
        any_5xx: bool = False,
        rate_limits: bool = True,
        auth: bool = True,
        after_stream: bool = False,
    ) -> httpx.Response:
        """Send with retries and return the final reply (maybe an error status), its body read
        up to its cap; raise a fluxwidget `TransportError` when the network failed for good.

        `call` names the call in errors; `any_5xx` retries every 5xx (read-only calls);
        `rate_limits=False` returns a 429 at once (the caller waits visibly); `after_stream`
        sends it on the streams' pool, where the job's drained stream left a warm connection.
        `content` is a raw body (an upload): bytes, or a `SizedBody` read as it is sent;
        `deadline` replaces `Limits.call_timeout` for each attempt (a large upload needs
        longer). `auth=False` sends no key: the caller's own
        ``Authorization`` header (an upload token), if any, goes as given.
        """
        state = self._state()
        http = state.stream_http if after_stream else state.http
        body: bytes | SizedBody | None = content
        if content is not None and not isinstance(content, bytes):
            headers = {**(headers or {}), "Content-Length": str(len(content))}
        elif content is not None and len(content) > _SLICE:
            body = _Slices(content)
            headers = {**(headers or {}), "Content-Length": str(len(content))}
        request = http.build_request(
            method,
            url,
            json=json,
            content=body,
            params=params,
            headers=self._headers(headers, auth),
        )
        try:
            async for attempt in retrying(self.retry, submit=submit):
                with attempt:
                    async with state.calls:
                        response = await self._send_within(http, request, deadline)
                    log.debug("%s %s -> %d", method, url, response.status_code)
                    if response.is_error and should_retry_response(
                        response,
                        submit=submit,
                        policy=self.retry,
                        any_5xx=any_5xx,
                        rate_limits=rate_limits,
                    ):
                        raise RetryableResponse(response)
                    return response
        except RetryableResponse as exc:
            return exc.response  # attempts ran out: the caller turns it into a FalError
        except httpx.HTTPError as exc:
            raise self.map_error(exc, call, submit=submit) from None
        finally:
            if isinstance(body, _Slices):
                body.release()
        raise AssertionError("unreachable: tenacity re-raises when it gives up")

    # --- the status stream ---------------------------------------------------------------------

    def stream_slot(self, *, running: bool, position: int | None = None) -> StreamSlot | None:
        """A stream slot for a job in this state, or None (see `StreamSlots.take`)."""
        return self._state().streams.take(running=running, position=position)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        url: str,
        *,
        params: dict[str, str] | None = None,
        slot: StreamSlot | None = None,
    ) -> AsyncIterator[SSEReader | None]:
        """An SSE stream in `slot` (released at the end), or without one a free slot, or None
        when every slot is taken (the caller polls).

        A stream that sends no byte for `Limits.stream_idle_timeout` ends in a TransportError.
        """
        state = self._state()
        if slot is None:
            slot = state.streams.take(running=False)
            if slot is None:
                yield None
                return
        headers = self._headers({"Accept": "text/event-stream", "Cache-Control": "no-store"}, True)
        timeout = httpx.Timeout(self._timeout.connect, read=self.limits.stream_idle_timeout)
        try:
            request = state.stream_http.build_request(
                "GET", url, params=params, headers=headers, timeout=timeout
            )
            try:
                response = await state.stream_http.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise self.map_error(exc, "status stream") from None
            try:
                yield SSEReader(response, self.limits.max_event_bytes, self.map_error)
            finally:
                await response.aclose()
        finally:
            slot.release()

    async def read_error_body(self, response: httpx.Response) -> httpx.Response:
        """A streamed error reply with its body read (capped), ready for `error_from_response`."""
        try:
            body, cut = await _read_capped(response, self.limits.max_error_bytes)
        except httpx.HTTPError:
            body, cut = b"", True
        headers = [(k, v) for k, v in response.headers.multi_items() if k not in _DROPPED_HEADERS]
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=body,
            request=response.request,
            extensions={TRUNCATED: cut},
        )

    # --- image downloads -----------------------------------------------------------------------

    async def download(self, url: str, *, policy: URLPolicy) -> httpx.Response:
        """GET an image without the key: redirects followed, each hop's URL checked by `policy`
        and so is every address it connects to (`ConnectGuard`); the body capped, an overall
        deadline and a minimum rate; retried like any read."""
        deadline = time.monotonic() + self.limits.download_timeout
        state = self._state()

        async def attempts() -> httpx.Response:
            async for attempt in retrying(self.retry, submit=False):
                with attempt:
                    async with state.calls:
                        response = await self._fetch(state.download_http, url, policy, deadline)
                    if response.is_error and should_retry_response(
                        response, submit=False, policy=self.retry
                    ):
                        raise RetryableResponse(response)
                    return response
            raise AssertionError("unreachable: tenacity re-raises when it gives up")

        try:
            return await asyncio.wait_for(attempts(), self.limits.download_timeout)
        except RetryableResponse as exc:
            return exc.response
        except asyncio.TimeoutError:
            raise DownloadTooSlowError(
                f"the image download from {_host(url)} did not finish within "
                f"{self.limits.download_timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise self.map_error(exc, "image download") from None

    async def _fetch(
        self,
        http: httpx.AsyncClient,
        url: str,
        policy: URLPolicy,
        deadline: float,
    ) -> httpx.Response:
        current = url
        for _hop in range(self.limits.max_redirects + 1):
            policy.check_url(current)
            request = http.build_request("GET", current, headers={"Accept": "image/*"})
            ConnectGuard(request, policy)
            response = await http.send(request, stream=True, follow_redirects=False)
            try:
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location:
                    current = str(response.url.join(location))
                    continue
                if response.is_error:
                    return await self.read_error_body(response)
                body = await self._read_image(response, deadline)
            finally:
                await response.aclose()
            headers = [
                (k, v) for k, v in response.headers.multi_items() if k not in _DROPPED_HEADERS
            ]
            return httpx.Response(
                response.status_code, headers=headers, content=body, request=request
            )
        raise ProtocolError(
            "image download", f"more than {self.limits.max_redirects} redirects from {_host(url)}"
        )

    async def _read_image(self, response: httpx.Response, deadline: float) -> bytes:
        cap = self.limits.max_image_bytes
        if int(response.headers.get("content-length") or 0) > cap:
            raise ResponseTooLargeError("image download", "the image", cap)
        chunks: list[bytes] = []
        size = 0
        window_start, window_bytes = time.monotonic(), 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise ResponseTooLargeError("image download", "the image", cap)
            chunks.append(chunk)
            now = time.monotonic()
            if now > deadline:
                raise DownloadTooSlowError(
                    f"the image download did not finish within {self.limits.download_timeout:g} s"
                )
            window_bytes += len(chunk)
            if now - window_start >= self.limits.rate_window:
                rate = window_bytes / (now - window_start)
                if rate < self.limits.min_download_rate:
                    raise DownloadTooSlowError(
                        f"the image download ran at {rate:.0f} B/s, under the minimum of "
                        f"{self.limits.min_download_rate:.0f} B/s"
                    )
                window_start, window_bytes = now, 0
        return b"".join(chunks)

    async def aclose(self) -> None:
        """Close the httpx client of the running loop (others close on their own loop)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._states.pop(loop, None)
        if state is not None:
            await state.http.aclose()
            await state.stream_http.aclose()
            await state.download_http.aclose()


def _has_request(exc: httpx.HTTPError) -> bool:
    try:
        exc.request  # noqa: B018 - raises RuntimeError when the exception has no request
    except RuntimeError:
        return False
    return True
