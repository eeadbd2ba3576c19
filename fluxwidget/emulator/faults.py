"""Fault injection: per-route errors, dropped connections, odd and slow replies, chosen by tests.

Besides errors and drops, a fault can replace the reply with a raw body (``{key}`` in it becomes
the emulator's key, to test redaction), cut the real reply short (``truncate``), pad it past a
size cap (``pad``), send it one byte at a time (``drip``), stall after the headers (``stall``),
answer a status stream with keep-alive comments only (``keepalive_only``), or redirect
(``redirect``, ``{path}`` being the original path).

A *drop* closes the TCP connection without sending any response: the server keeps a map from
each connection's peer address to its asyncio transport (filled by a small uvicorn protocol
subclass, see ``server.py``), and :class:`DropResponse` aborts that transport. The client sees
the connection close with no response (httpx raises ``RemoteProtocolError``/``ReadError``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterable, AsyncIterator, MutableMapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Literal, get_args

from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

Route = Literal[
    "submit",
    "status",
    "stream",
    "result",
    "cancel",
    "file",
    "token",
    "upload",
    "multipart",
    "part",
    "complete",
    "uploaded",
    "listing",
]
ROUTES: tuple[str, ...] = get_args(Route)

TransportMap = MutableMapping[tuple[str, int], asyncio.Transport]
"""Open connections by the client's (host, port), as in the ASGI scope's ``client``."""


@dataclass
class Fault:
    """One injected fault and how many more calls it applies to."""

    route: str
    status: int | None = None
    retry_after: float | None = None
    drop: bool = False
    delay: float = 0.0
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    after_accept: bool = False
    body: str | bytes | None = None
    """A raw body replacing the reply (status 200 unless `status` says)."""
    content_type: str = "application/json"
    truncate: int | None = None
    """The real reply's body cut to this many bytes (sent as a complete reply)."""
    pad: int | None = None
    """The real reply grown to at least this many bytes (a JSON object gets a padding field)."""
    drip: float | None = None
    """Seconds between the bytes of the body, sent one at a time."""
    stall: float | None = None
    """Seconds of silence after the headers, before the body."""
    keepalive_only: bool = False
    """A status stream that sends keep-alive comments and never an event."""
    redirect: str | None = None
    """Answer 302 to this URL; ``{path}`` is replaced by the original path."""

    @property
    def wraps(self) -> bool:
        """Whether this fault alters the real reply (rather than replacing it)."""
        return any(x is not None for x in (self.truncate, self.pad, self.drip, self.stall))

    def response(self, *, key: str = "", path: str = "") -> Response | None:
        """The reply replacing the real one, or None when this fault only delays or wraps."""
        if self.redirect is not None:
            return RedirectResponse(self.redirect.replace("{path}", path), status_code=302)
        if self.body is not None:
            raw = self.body.encode() if isinstance(self.body, str) else self.body
            raw = raw.replace(b"{key}", key.encode())
            headers = self._headers()
            headers.setdefault("content-type", self.content_type)
            return self.wrap(Response(raw, status_code=self.status or 200, headers=headers))
        if self.status is None:
            return None
        try:
            phrase = HTTPStatus(self.status).phrase
        except ValueError:
            phrase = "Error"
        headers = self._headers()
        detail = f"{phrase} (injected by the emulator)"
        return JSONResponse({"detail": detail}, status_code=self.status, headers=headers)

    def _headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.retry_after is not None:
            value = self.retry_after
            headers["Retry-After"] = str(int(value)) if float(value).is_integer() else str(value)
        return headers

    def wrap(self, response: Response, closing: asyncio.Event | None = None) -> Response:
        """The real reply altered as this fault says (cut, padded, dripped, stalled)."""
        if not self.wraps:
            return response
        if isinstance(response, StreamingResponse):
            response.body_iterator = self._slow(response.body_iterator, closing)
            return response
        body = bytes(response.body)
        if self.pad is not None and len(body) < self.pad:
            body = _padded(body, self.pad)
        if self.truncate is not None:
            body = body[: self.truncate]
        headers = {k: v for k, v in response.headers.items() if k != "content-length"}
        if self.drip is None and self.stall is None:
            return Response(body, status_code=response.status_code, headers=headers)
        return StreamingResponse(
            self._slow(_once(body), closing), status_code=response.status_code, headers=headers
        )

    async def _slow(
        self, chunks: AsyncIterable[str | bytes | memoryview], closing: asyncio.Event | None
    ) -> AsyncIterator[bytes]:
        if self.stall:
            await _sleep(self.stall, closing)
        async for chunk in chunks:
            data = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
            if not self.drip:
                yield data
                continue
            for index in range(len(data)):
                yield data[index : index + 1]
                await _sleep(self.drip, closing)


def _padded(body: bytes, size: int) -> bytes:
    try:
        value = json.loads(body)
    except ValueError:
        value = None
    if isinstance(value, dict):
        value["padding"] = "x" * (size - len(body))
        return json.dumps(value).encode()
    return body + b" " * (size - len(body))


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _sleep(seconds: float, closing: asyncio.Event | None) -> None:
    """Sleep, waking early when the emulator closes."""
    if closing is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(closing.wait(), seconds)


async def keepalive_stream(interval: float, closing: asyncio.Event | None) -> AsyncIterator[bytes]:
    """A status stream that never reports anything: keep-alive comments until closed."""
    while closing is None or not closing.is_set():
        yield b": keep-alive\n\n"
        await _sleep(interval, closing)


class FaultBook:
    """The pending faults, shared between the test thread and the server loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Queue a fault; faults of one route apply in the order they were added."""
        if fault.route not in ROUTES:
            raise ValueError(f"unknown route {fault.route!r}; use one of {', '.join(ROUTES)}")
        if fault.times < 1:
            raise ValueError("times must be at least 1")
        if fault.keepalive_only and fault.route != "stream":
            raise ValueError("keepalive_only only applies to the stream route")
        if fault.after_accept and fault.route != "submit":
            raise ValueError("after_accept only applies to the submit route")
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Forget every pending fault."""
        with self._lock:
            self._faults.clear()

    def take(self, route: str, *, after_accept: bool = False) -> Fault | None:
        """The next fault for ``route`` (at this point of the call), consuming one use."""
        with self._lock:
            for fault in self._faults:
                if fault.route == route and fault.after_accept == after_accept:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> list[Fault]:
        """A copy of the faults still to apply."""
        with self._lock:
            return list(self._faults)


class DropResponse(Response):
    """Not a response: close the client's TCP connection without answering."""

    def __init__(self, transports: TransportMap) -> None:
        super().__init__()
        self._transports = transports

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        transport = self._transports.get((client[0], client[1])) if client else None
        if transport is None:  # cannot reach the socket: fail loudly rather than answer
            raise RuntimeError("emulator: no transport to drop for this connection")
        transport.abort()
        # wait for uvicorn to notice, so that it does not send a 500 of its own
        await asyncio.wait_for(_until_disconnect(receive), timeout=2.0)


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
