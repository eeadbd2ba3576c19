"""Where an image download may connect: the URL policy applied to addresses, not only names.

`URLPolicy.check_url` judges a URL by its text, so a name such as ``images.example`` that
resolves to 169.254.169.254 (or to a private address) would pass it. For each new connection of
a download, `ConnectGuard`:

1. looks the name up and checks every address it resolves to (`URLPolicy.check_address`): a
   name with one forbidden address is refused before any connection is attempted;
2. checks the address the socket actually connected to (its peer address), before TLS and
   before any byte of the request is sent. A name whose answer changes between the lookup above
   and the one made to connect (DNS rebinding) is caught here.

It runs as httpx's ``trace`` request extension (httpcore calls it at
``connection.connect_tcp.started`` and ``.complete``, the latter with the connected stream), so
httpx's own connection handling, proxies and error mapping are kept. A refusal is an
`UnsafeURLError`; a failed lookup is an ``httpx.ConnectError`` (a `TransportError` to the user),
as when httpcore's own lookup fails.

Not checked by address, only by name:
- through a proxy (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ... — httpx reads them), the
  connection goes to the proxy, which resolves the name itself; the proxy is yours, so its own
  address is not judged either;
- through an injected transport (``FluxClient(transport=...)``, e.g. ``httpx.ASGITransport``),
  which makes no connection of its own.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import httpx

from ..errors import UnsafeURLError
from .urls import URLPolicy, parse_address

__all__ = ["ConnectGuard"]

log = logging.getLogger("fluxwidget.client")

_STARTED = "connection.connect_tcp.started"
_CONNECTED = "connection.connect_tcp.complete"


class ConnectGuard:
    """The ``trace`` extension of one download request: checks where its connection goes."""

    def __init__(self, request: httpx.Request, policy: URLPolicy) -> None:
        self._request = request
        self._url = str(request.url)
        self._host = request.url.raw_host.decode("ascii")
        self._policy = policy
        self._direct = False
        request.extensions["trace"] = self._trace

    async def _trace(self, event: str, info: dict[str, Any]) -> None:
        if event == _STARTED:
            # A connection to another host than the URL's is to a proxy (see above).
            self._direct = info.get("host") == self._host
            if not self._direct:
                log.debug("image download through a proxy: %s checked by name only", self._host)
            elif parse_address(self._host) is None:
                await self._check_lookup(info.get("port"), info.get("timeout"))
        elif event == _CONNECTED and self._direct:
            await self._check_peer(info.get("return_value"))

    async def _check_lookup(self, port: Any, timeout: Any) -> None:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(self._host, port, type=socket.SOCK_STREAM), timeout
            )
        except asyncio.TimeoutError:
            raise httpx.ConnectTimeout(
                f"looking up {self._host} took more than {timeout:g} s", request=self._request
            ) from None
        except OSError as exc:
            raise httpx.ConnectError(
                f"could not look up {self._host}: {exc}", request=self._request
            ) from None
        for *_, sockaddr in infos:
            self._policy.check_address(self._url, str(sockaddr[0]), how="resolves to")

    async def _check_peer(self, stream: Any) -> None:
        peer = stream.get_extra_info("server_addr") if stream is not None else None
        try:
            if not isinstance(peer, tuple) or not peer:
                raise UnsafeURLError(
                    f"could not tell which address {self._host} connected to, so the download "
                    "was not sent"
                )
            self._policy.check_address(self._url, str(peer[0]), how="connected to")
        except UnsafeURLError:
            if stream is not None:
                await stream.aclose()
            raise
