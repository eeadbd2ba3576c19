"""An emulated network link inside the emulator: round-trip delay, connection setup, counters.

Loopback hides what a real link costs: every request waits a round trip and every new
connection a few more (TCP handshake, TLS). `link_protocol` wraps uvicorn's h11 protocol so that
each connection's bytes are delayed by half the round trip in each direction, the first bytes of
a new connection by ``connect_rtts`` extra round trips, and everything one reply writes in one
turn of the event loop leaves in one ``write`` (headers and body together; TCP_NODELAY is set by
the server). The delays are read from a shared `LinkConditions` at each chunk, so a benchmark can
change them between runs. `ConnectionStats` counts the connections the server accepted.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ConnectionStats", "LinkConditions", "link_protocol"]


@dataclass
class LinkConditions:
    """The emulated link; zero everywhere is plain loopback."""

    rtt: float = 0.0
    """Seconds per round trip: half of it each way, on every chunk."""
    connect_rtts: float = 0.0
    """Extra round trips before a new connection's first request arrives (2 ≈ TCP + TLS)."""

    def __post_init__(self) -> None:
        if self.rtt < 0 or self.connect_rtts < 0:
            raise ValueError("rtt and connect_rtts must be >= 0")


@dataclass
class ConnectionStats:
    """Connections the server accepted: in total, open now, and at most at once."""

    opened: int = 0
    open: int = 0
    peak_open: int = 0

    def made(self) -> None:
        self.opened += 1
        self.open += 1
        self.peak_open = max(self.peak_open, self.open)

    def lost(self) -> None:
        self.open -= 1


class _Delayed:
    """Chunks in order, each handed to `deliver` at its due time on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[bytes], None]) -> None:
        self._loop = loop
        self._deliver = deliver
        self._queue: deque[tuple[float, bytes]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self.on_empty: Callable[[], None] | None = None

    def __bool__(self) -> bool:
        return bool(self._queue)

    def push(self, due: float, data: bytes) -> None:
        self._queue.append((due, data))
        if self._timer is None:
            self._timer = self._loop.call_at(self._queue[0][0], self._run)

    def _run(self) -> None:
        self._timer = None
        now = self._loop.time()
        while self._queue and self._queue[0][0] <= now:
            self._deliver(self._queue.popleft()[1])
        if self._queue:
            self._timer = self._loop.call_at(self._queue[0][0], self._run)
        elif self.on_empty is not None:
            self.on_empty()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()


class _LinkTransport(asyncio.Transport):
    """The server's side of one connection: writes of one loop turn joined, then delayed."""

    def __init__(self, real: asyncio.Transport, link: LinkConditions) -> None:
        super().__init__()
        self._real = real
        self._link = link
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []
        self._pending_since = 0.0
        self._out = _Delayed(self._loop, self._send)
        self._out.on_empty = self._maybe_close
        self._closing = False

    def _send(self, data: bytes) -> None:
        if not self._real.is_closing():
            self._real.write(data)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        if not self._pending:
            self._pending_since = self._loop.time()
            self._loop.call_soon(self._seal)
        self._pending.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _seal(self) -> None:
        data = b"".join(self._pending)
        self._pending.clear()
        delay = self._link.rtt / 2
        if delay <= 0 and not self._out:
            self._send(data)
            self._maybe_close()
        else:
            self._out.push(self._pending_since + delay, data)

    def _maybe_close(self) -> None:
        if self._closing and not self._pending and not self._out:
            self._real.close()

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            if not self._pending:
                self._maybe_close()

    def is_closing(self) -> bool:
        return self._closing or self._real.is_closing()

    def abort(self) -> None:
        self._closing = True
        self._pending.clear()
        self._out.cancel()
        self._real.abort()

    def can_write_eof(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._real.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._real.pause_reading()

    def resume_reading(self) -> None:
        self._real.resume_reading()

    def is_reading(self) -> bool:
        return self._real.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._real.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._real.get_write_buffer_size()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._real.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._real.get_protocol()


def link_protocol(link: LinkConditions, stats: ConnectionStats) -> type[H11Protocol]:
    """uvicorn's h11 protocol behind the emulated `link`, counting connections in `stats`."""

    class LinkH11Protocol(H11Protocol):
        _inbound: _Delayed | None = None
        _ready_at = 0.0
        _lost: tuple[Exception | None] | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            stats.made()
            loop = asyncio.get_running_loop()
            self._ready_at = loop.time() + link.connect_rtts * link.rtt
            self._inbound = _Delayed(loop, super().data_received)
            self._inbound.on_empty = self._after_inbound
            super().connection_made(_LinkTransport(transport, link))

        def data_received(self, data: bytes) -> None:
            inbound = self._inbound
            assert inbound is not None
            now = asyncio.get_running_loop().time()
            due = max(now, self._ready_at) + link.rtt / 2
            if due <= now and not inbound:
                super().data_received(data)
            else:
                inbound.push(due, data)

        def _after_inbound(self) -> None:
            if self._lost is not None:
                lost, self._lost = self._lost, None
                self._connection_lost(lost[0])

        def connection_lost(self, exc: Exception | None) -> None:
            if self._inbound:  # deliver what is still on the wire first
                self._lost = (exc,)
                return
            self._connection_lost(exc)

        def _connection_lost(self, exc: Exception | None) -> None:
            stats.lost()
            super().connection_lost(exc)

    return LinkH11Protocol
