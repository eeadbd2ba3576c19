"""The parts of the client the panel uses, as protocols (the ui knows nothing of HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from ..client.status import StatusUpdate
from ..schema import FluxImage, FluxLoraOutput

__all__ = ["ClientConfigLike", "ClientLike", "HandleLike"]


class ClientConfigLike(Protocol):
    """Where the client sends requests."""

    @property
    def base_url(self) -> str: ...

    @property
    def auth_scheme(self) -> str: ...

    @property
    def endpoint(self) -> str: ...


class HandleLike(Protocol):
    """A submitted request."""

    @property
    def request_id(self) -> str: ...

    def updates(self) -> AsyncIterator[StatusUpdate]: ...

    async def result(self) -> FluxLoraOutput: ...

    async def cancel(self) -> str: ...


class ClientLike(Protocol):
    """What the panel needs from `fluxwidget.client.FluxClient`."""

    @property
    def config(self) -> ClientConfigLike: ...

    async def submit(self, input: Any = None, /, **fields: Any) -> HandleLike: ...

    async def download(self, image: FluxImage | str, /) -> bytes: ...
