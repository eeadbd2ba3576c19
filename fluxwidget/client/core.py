"""`FluxClient`: fal's queue protocol for flux-lora — submit, status, result, cancel, generate."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from pathlib import Path
from typing import Any, Literal

import httpx

from ..errors import FalError, GenerationTimeout, TransportError
from ..images import decode_data_uri
from ..journal import Journal
from ..schema import FluxImage, FluxLoraInput, FluxLoraOutput, validate_input
from .config import ClientConfig, key_from_environment
from .handle import RequestHandle, UpdateCallback
from .responses import error_from_response
from .retries import RetryPolicy
from .status import StatusUpdate
from .transport import Transport

__all__ = ["FluxClient"]

log = logging.getLogger("fluxwidget.client")

SyncMode = Literal["thread", "nest_asyncio"]


class FluxClient:
    """An async client for ``fal-ai/flux-lora`` on fal's queue, a proxy, or the emulator.

    The key comes from `api_key`, else ``FAL_KEY``, else ``FAL_KEY_ID`` + ``FAL_KEY_SECRET``;
    it is sent only in the Authorization header of queue calls and never shown.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        auth_scheme: str | None = None,
        endpoint: str | None = None,
        url_mode: str | None = None,
        platform_url: str | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_concurrency: int = 8,
        max_streams: int = 4,
        use_sse: bool = True,
        poll_interval: float = 0.25,
        max_poll_interval: float = 2.0,
        retry: RetryPolicy | None = None,
        journal: Journal | str | Path | bool | None = None,
    ) -> None:
        self.config = ClientConfig.resolve(
            base_url=base_url,
            endpoint=endpoint,
            auth_scheme=auth_scheme,
            url_mode=url_mode,
            platform_url=platform_url,
        )
        key = api_key if api_key is not None else key_from_environment()
        self.__key = key.strip() if key else None
        self.use_sse = use_sse
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        if journal is False:
            self.journal: Journal | None = None
        elif isinstance(journal, Journal):
            self.journal = journal
        else:
            self.journal = Journal(None if journal in (None, True) else Path(str(journal)))
        self._transport = Transport(
            auth_header=f"{self.config.auth_scheme} {self.__key}" if self.__key else None,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            stream_read_timeout=max(read_timeout, 60.0),
            max_concurrency=max_concurrency,
            max_streams=max_streams,
            retry=retry or RetryPolicy(),
        )

    def __repr__(self) -> str:
        key = "set" if self.__key else "not set"
        return (
            f"FluxClient(base_url={self.config.base_url!r}, endpoint={self.config.endpoint!r}, "
            f"auth_scheme={self.config.auth_scheme!r}, key {key})"
        )

    @property
    def has_key(self) -> bool:
        """Whether a key is configured (the key itself is never exposed)."""
        return self.__key is not None

    async def __aenter__(self) -> FluxClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections this client opened on the running loop."""
        await self._transport.aclose()

    # --- internals shared with RequestHandle ----------------------------------------------

    def _error(
        self, response: httpx.Response, *, request_id: str | None = None, completed: bool = False
    ) -> FalError:
        return error_from_response(
            response,
            request_id=request_id,
            auth_scheme=self.config.auth_scheme,
            completed=completed,
            redact=self.__key,
        )

    # --- the protocol ---------------------------------------------------------------------

    async def submit(
        self,
        input: FluxLoraInput | dict[str, Any] | None = None,
        /,
        *,
        start_timeout: float | None = None,
        headers: dict[str, str] | None = None,
        journal: Journal | None = None,
        journal_fields: dict[str, Any] | None = None,
        **fields: Any,
    ) -> RequestHandle:
        """Validate the input (InputError before any request), submit it, journal the id.

        `start_timeout` sends ``X-Fal-Request-Timeout``: fal gives up (504, final) when the job
        has not started by then. `journal` (default: the client's) receives the request id,
        fsynced, before this returns; `journal_fields` are added to each of its records.
        """
        params = validate_input(input, **fields)
        extra = dict(headers or {})
        if start_timeout is not None:
            extra["X-Fal-Request-Timeout"] = f"{start_timeout:g}"
        url = self.config.submit_url
        try:
            response = await self._transport.request(
                "POST", url, json=params.to_payload(), headers=extra, submit=True
            )
        except httpx.TransportError as exc:
            maybe_sent = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
            why = (
                "no reply to the submit: the server may have accepted (and billed) it, so it was "
                "not retried — look for it in your fal request history before submitting again"
                if maybe_sent
                else f"could not connect to {self.config.base_url}"
            )
            message = f"{type(exc).__name__}: {why}"
            raise TransportError(message, maybe_accepted=maybe_sent) from None
        if response.is_error:
            raise self._error(response)
        body = response.json()
        request_id = str(body["request_id"])
        handle = RequestHandle(
            self,
            request_id,
            status_url=self.config.choose_url(body.get("status_url"), request_id, "/status"),
            response_url=self.config.choose_url(body.get("response_url"), request_id, ""),
            cancel_url=self.config.choose_url(body.get("cancel_url"), request_id, "/cancel"),
            input=params,
            journal=journal if journal is not None else self.journal,
            journal_fields=journal_fields,
        )
        await handle.record(
            "submitted",
            endpoint=self.config.endpoint,
            base_url=self.config.base_url,
            status_url=handle.status_url,
            response_url=handle.response_url,
            cancel_url=handle.cancel_url,
            input=params.to_payload(),
        )
        return handle

    def handle(
        self,
        request_id: str,
        *,
        journal: Journal | None = None,
        journal_fields: dict[str, Any] | None = None,
    ) -> RequestHandle:
        """A handle for an earlier request, by id (URLs built on the base URL); its events go
        to `journal` (default: the client's)."""
        return RequestHandle(
            self,
            request_id,
            status_url=self.config.request_url(request_id, "/status"),
            response_url=self.config.request_url(request_id),
            cancel_url=self.config.request_url(request_id, "/cancel"),
            journal=journal if journal is not None else self.journal,
            journal_fields=journal_fields,
        )

    async def status(self, request_id: str, *, logs: bool = True) -> StatusUpdate:
        """The current status of a request."""
        return await self.handle(request_id).status(logs=logs)

    async def result(self, request_id: str) -> FluxLoraOutput:
        """The result of a request, waiting for it to complete."""
        return await self.handle(request_id).result()

    async def cancel(self, request_id: str) -> str:
        """Ask fal to cancel a request; returns fal's cancel status."""
        return await self.handle(request_id).cancel()

    async def generate(
        self,
        input: FluxLoraInput | dict[str, Any] | None = None,
        /,
        *,
        timeout: float | None = None,
        on_update: UpdateCallback | None = None,
        **fields: Any,
    ) -> FluxLoraOutput:
        """Submit, wait for completion and return the result.

        After `timeout` seconds the job is cancelled best-effort and GenerationTimeout raised.
        If this coroutine is cancelled, the job is cancelled too, so nothing keeps running
        (and paying) unseen.
        """
        handle = await self.submit(input, **fields)
        try:
            return await asyncio.wait_for(handle.result(on_update), timeout)
        except asyncio.TimeoutError:
            await handle.cancel_quietly()
            raise GenerationTimeout(
                f"no result after {timeout:g} s; cancellation was requested",
                request_id=handle.request_id,
            ) from None
        except asyncio.CancelledError:
            await asyncio.shield(handle.cancel_quietly())
            raise

    async def download(self, image: FluxImage | str) -> bytes:
        """An image's bytes: a ``data:`` URI decoded, or an http(s) URL fetched (no key sent)."""
        url = image.url if isinstance(image, FluxImage) else image
        if url.startswith("data:"):
            return decode_data_uri(url)[0]
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"cannot download {url[:80]!r}: not an http(s) or data: URL")
        try:
            response = await self._transport.request("GET", url, auth=False)
        except httpx.TransportError as exc:
            raise TransportError(f"{type(exc).__name__} while downloading {url[:120]}") from None
        if response.is_error:
            raise self._error(response)
        return response.content

    async def platform_get(self, path: str, params: dict[str, str]) -> httpx.Response:
        """GET ``{config.platform_url}{path}`` with the key (fal's platform API, e.g. prices);
        raises httpx's transport errors."""
        url = f"{self.config.platform_url}{path}"
        return await self._transport.request("GET", url, params=params)

    # --- blocking use ---------------------------------------------------------------------

    def generate_sync(
        self,
        input: FluxLoraInput | dict[str, Any] | None = None,
        /,
        *,
        mode: SyncMode = "thread",
        timeout: float | None = None,
        **fields: Any,
    ) -> FluxLoraOutput:
        """Blocking `generate` for scripts, that also works in a cell where a loop runs.

        ``mode="thread"`` (default) runs it on a worker thread with its own loop. The opt-in
        ``mode="nest_asyncio"`` runs it on the current loop by patching asyncio globally with
        nest-asyncio (archived; affects the whole kernel) — see the README.
        """
        output: FluxLoraOutput = self._run_blocking(
            lambda: self.generate(input, timeout=timeout, **fields), mode
        )
        return output

    def _run_blocking(self, make: Any, mode: SyncMode) -> Any:
        if mode == "nest_asyncio":
            import nest_asyncio

            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
            nest_asyncio.apply(loop)
            return loop.run_until_complete(make())
        if mode != "thread":
            raise ValueError(f"mode: {mode!r} is not allowed; use 'thread' or 'nest_asyncio'")

        async def run_and_close() -> Any:
            try:
                return await make()
            finally:
                await self.aclose()  # this loop's httpx client dies with the loop

        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fluxwidget") as pool:
            return pool.submit(lambda: asyncio.run(run_and_close())).result()
