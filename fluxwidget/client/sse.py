"""A Server-Sent Events reader with a cap on one event, over a streamed httpx response.

Only what fal's status stream uses is kept: ``data:`` lines (joined with newlines) make an
event, a blank line ends it, and comment lines (``: keep-alive``) are reported as such so the
caller can tell a live but quiet stream from a silent one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx

from ..errors import FalError, ResponseTooLargeError

__all__ = ["KEEPALIVE", "SSEReader"]

KEEPALIVE = None
"""What `SSEReader.events` yields for a comment (keep-alive) line."""


class SSEReader:
    """The events of one streamed response; httpx errors are mapped by `map_error`."""

    def __init__(
        self,
        response: httpx.Response,
        max_event_bytes: int,
        map_error: Callable[[httpx.HTTPError, str], FalError],
    ) -> None:
        self.response = response
        self._cap = max_event_bytes
        self._map_error = map_error

    def _too_large(self) -> ResponseTooLargeError:
        return ResponseTooLargeError("status stream", "one event", self._cap)

    async def _lines(self) -> AsyncIterator[bytes]:
        buffer = b""
        try:
            async for chunk in self.response.aiter_bytes():
                buffer += chunk
                held = b"\r" if buffer.endswith(b"\r") else b""  # maybe half of a \r\n
                if held:
                    buffer = buffer[:-1]
                *lines, buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
                buffer += held
                for line in lines:
                    yield line
                if len(buffer) > self._cap:
                    raise self._too_large()
        except httpx.HTTPError as exc:
            raise self._map_error(exc, "status stream") from None
        if buffer.endswith(b"\r"):  # the held \r ended a line after all
            yield buffer[:-1]

    async def events(self) -> AsyncIterator[str | None]:
        """Each event's data (text), or `KEEPALIVE` for a comment line."""
        data: list[bytes] = []
        size = 0
        async for line in self._lines():
            if not line:
                if data:
                    yield b"\n".join(data).decode("utf-8", "replace")
                data, size = [], 0
            elif line.startswith(b":"):
                yield KEEPALIVE
            elif line.startswith(b"data"):
                field, _, value = line.partition(b":")
                if field != b"data":
                    continue
                value = value[1:] if value.startswith(b" ") else value
                size += len(value)
                if size > self._cap:
                    raise self._too_large()
                data.append(value)
