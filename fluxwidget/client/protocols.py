"""The one client contract: what the pipeline, sweeps and the ui need of a client and its
submitted requests (`FluxClient` and `RequestHandle` provide them), and what a request handle
needs of its client (`HandleBackend`).

Code above the client depends on these protocols, not on `FluxClient`, so a test double or a
wrapper (a client that records, throttles, or talks to another host) fits anywhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx

from ..errors import FalError
from ..schema import FluxImage, FluxLoraInput, FluxLoraOutput
from .history import RequestListing
from .journal import Journal
from .status import StatusUpdate
from .transport import Transport
from .uploads import FileKind, ProgressCallback

__all__ = ["ClientSettings", "HandleBackend", "JobClient", "JobHandle"]

E = TypeVar("E", bound=BaseException)


class ClientSettings(Protocol):
    """Where a client sends requests (`ClientConfig` provides it)."""

    @property
    def base_url(self) -> str: ...

    @property
    def auth_scheme(self) -> str: ...

    @property
    def endpoint(self) -> str: ...

    def endpoint_for(self, input: FluxLoraInput) -> str: ...


class JobHandle(Protocol):
    """A submitted request (`RequestHandle`)."""

    @property
    def request_id(self) -> str: ...

    billable_units: float | None

    def updates(self, *, logs: bool = True) -> AsyncIterator[StatusUpdate]: ...

    async def fetch_result(self) -> FluxLoraOutput: ...

    async def result(self) -> FluxLoraOutput: ...

    async def cancel(self) -> str: ...

    async def record(self, event: str, **fields: Any) -> None: ...


class JobClient(Protocol):
    """A client jobs are submitted with (`FluxClient`)."""

    @property
    def config(self) -> ClientSettings: ...

    async def submit(
        self,
        input: FluxLoraInput,
        /,
        *,
        journal: Journal | None = None,
        journal_fields: dict[str, Any] | None = None,
    ) -> JobHandle: ...

    def handle(
        self,
        request_id: str,
        *,
        journal: Journal | None = None,
        journal_fields: dict[str, Any] | None = None,
    ) -> JobHandle: ...

    async def download(self, image: FluxImage | str, /) -> bytes: ...

    async def upload(
        self,
        path: str | Path,
        /,
        *,
        field: str = "path",
        kind: FileKind = "any",
        on_progress: ProgressCallback | None = None,
    ) -> str:
        """A local file's URL on the server's storage (uploaded, or cached by content);
        `InputError` naming `field` for a file unfit to send, before any request."""

    async def platform_get(self, path: str, params: dict[str, str]) -> httpx.Response: ...

    async def list_requests(
        self, endpoint_id: str | None = None, *, start: datetime, end: datetime | None = None
    ) -> RequestListing:
        """The account's requests of an endpoint in a time window (fal's platform API), to
        find a submit whose reply was lost."""


class HandleBackend(Protocol):
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

    @property
    def max_queue_poll_interval(self) -> float: ...

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
