"""Fault injection: per-route errors, dropped connections and slow replies, chosen by tests.

A *drop* closes the TCP connection without sending any response: the server keeps a map from
each connection's peer address to its asyncio transport (filled by a small uvicorn protocol
subclass, see ``server.py``), and :class:`DropResponse` aborts that transport. The client sees
the connection close with no response (httpx raises ``RemoteProtocolError``/``ReadError``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Literal, get_args

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

Route = Literal["submit", "status", "stream", "result", "cancel", "file"]
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

    def response(self) -> Response | None:
        """The error reply, or None when this fault only delays."""
        if self.status is None:
            return None
        try:
            phrase = HTTPStatus(self.status).phrase
        except ValueError:
            phrase = "Error"
        headers = dict(self.headers)
        if self.retry_after is not None:
            value = self.retry_after
            headers["Retry-After"] = str(int(value)) if float(value).is_integer() else str(value)
        detail = f"{phrase} (injected by the emulator)"
        return JSONResponse({"detail": detail}, status_code=self.status, headers=headers)


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
