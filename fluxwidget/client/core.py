"""`FluxClient`: fal's queue protocol for flux-lora — submit, status, result, cancel, generate."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx

from ..errors import (
    FalError,
    FieldProblem,
    GenerationTimeout,
    InputError,
    ProtocolError,
    ResponseTooLargeError,
    UnsafeURLError,
)
from ..images import decode_data_uri, image_size
from ..schema import FluxImage, FluxLoraInput, FluxLoraOutput, validate_input
from .config import ClientConfig, key_from_environment
from .handle import RequestHandle, UpdateCallback
from .history import MAX_PAGES, PAGE_LIMIT, RequestListing, list_requests
from .journal import Journal
from .limits import Limits
from .redact import Redactor
from .responses import error_from_response, read_object
from .retries import RetryPolicy
from .status import StatusUpdate
from .transport import Transport
from .uploads import (
    FileKind,
    ProgressCallback,
    UploadCache,
    Uploader,
    UploadOptions,
    default_cache_path,
    upload_local_files,
)
from .urls import URLPolicy, is_downgrade

__all__ = ["FluxClient"]

log = logging.getLogger("fluxwidget.client")

SyncMode = Literal["thread", "nest_asyncio"]
E = TypeVar("E", bound=BaseException)

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")
"""A request id the client will put in a URL or a journal (fal's are UUIDs)."""


class FluxClient:
    """An async client for ``fal-ai/flux-lora`` on fal's queue, a proxy, or the emulator.

    The key comes from `api_key`, else ``FAL_KEY``, else ``FAL_KEY_ID`` + ``FAL_KEY_SECRET``;
    it is sent only in the Authorization header of queue calls and never shown: every error
    the client raises has it masked. Uploads of local files (`upload`, and LoRA paths that
    name a local file) get a token from `storage_url` with the key and send the file with
    that token only; they are cached by content in `upload_cache` (a path; False for none;
    default ``FLUXWIDGET_UPLOAD_CACHE`` or ``~/.cache/fluxwidget/uploads.json``).

    `transport` is an httpx transport to send through (e.g. ``httpx.ASGITransport(app=...)``
    for in-process tests); it is closed with the client. `limits` caps what a server can make
    the client hold and how long it waits (see `Limits`); `retry` says what is retried.
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
        storage_url: str | None = None,
        upload_cache: UploadCache | str | Path | bool | None = None,
        upload_options: UploadOptions | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_concurrency: int = 8,
        max_streams: int = 32,
        use_sse: bool = True,
        poll_interval: float = 0.25,
        max_poll_interval: float = 0.5,
        max_queue_poll_interval: float = 60.0,
        retry: RetryPolicy | None = None,
        limits: Limits | None = None,
        journal: Journal | str | Path | bool | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = ClientConfig.resolve(
            base_url=base_url,
            endpoint=endpoint,
            auth_scheme=auth_scheme,
            url_mode=url_mode,
            platform_url=platform_url,
            storage_url=storage_url,
        )
        key = api_key if api_key is not None else key_from_environment()
        self.__key = key.strip() if key else None
        self._redactor = Redactor(self.__key)
        self.use_sse = use_sse
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.max_queue_poll_interval = max_queue_poll_interval
        if journal is False:
            self.journal: Journal | None = None
        elif isinstance(journal, Journal):
            self.journal = journal
        else:
            self.journal = Journal(None if journal in (None, True) else Path(str(journal)))
        self._options: dict[str, Any] = {
            "base_url": self.config.base_url,
            "auth_scheme": self.config.auth_scheme,
            "endpoint": self.config.endpoint,
            "url_mode": self.config.url_mode,
            "platform_url": self.config.platform_url,
            # as given: a copy with another base_url derives its own (the key stays on hosts
            # the user configured)
            "storage_url": storage_url,
            "upload_cache": upload_cache,
            "upload_options": upload_options or UploadOptions(),
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "max_concurrency": max_concurrency,
            "max_streams": max_streams,
            "use_sse": use_sse,
            "poll_interval": poll_interval,
            "max_poll_interval": max_poll_interval,
            "max_queue_poll_interval": max_queue_poll_interval,
            "retry": retry or RetryPolicy(),
            "limits": limits or Limits(),
            "journal": self.journal if self.journal is not None else False,
            "transport": transport,
        }
        self._http = Transport(
            auth_header=f"{self.config.auth_scheme} {self.__key}" if self.__key else None,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            max_concurrency=max_concurrency,
            max_streams=max_streams,
            retry=self._options["retry"],
            limits=self._options["limits"],
            transport=transport,
        )
        self._uploader = Uploader(
            self._http,
            storage_url=self.config.storage_url,
            auth_scheme=self.config.auth_scheme,
            redactor=self._redactor,
            options=self._options["upload_options"],
            cache=_upload_cache(upload_cache),
        )
        self.upload_progress: Callable[[str, int, int], None] | None = None
        """Hears (local path, bytes sent, total) of every upload that has no `on_progress` of
        its own (e.g. the CLI's progress bars for the files an input names)."""

    def with_options(self, *, api_key: str | None = None, **changes: Any) -> FluxClient:
        """A copy of this client with some settings changed (any `__init__` argument).

        Everything not named is kept: the key (unless `api_key` is given), URL mode, journal,
        SSE, concurrency, retry policy, limits and transport. The copy has its own connections;
        close this client when it is no longer used.
        """
        unknown = set(changes) - set(self._options)
        if unknown:
            raise TypeError(f"with_options: unknown option(s) {', '.join(sorted(unknown))}")
        return FluxClient(
            api_key if api_key is not None else self.__key or "",
            **{**self._options, **changes},
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

    @property
    def limits(self) -> Limits:
        """The caps and deadlines in force."""
        return self._http.limits

    @property
    def http(self) -> Transport:
        """The transport the calls go through (part of `HandleBackend`, used by handles)."""
        return self._http

    async def __aenter__(self) -> FluxClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections this client opened on the running loop (and wait for the
        journal's background writes)."""
        await self._http.aclose()
        if Journal.has_unwritten():
            await asyncio.to_thread(Journal.flush)

    # --- what handles use (`HandleBackend`) ----------------------------------------------------

    def error_for(
        self,
        response: httpx.Response,
        *,
        request_id: str | None = None,
        completed: bool = False,
        download: bool = False,
    ) -> FalError:
        """The typed error for an error reply, the key masked in all it carries."""
        return error_from_response(
            response,
            request_id=request_id,
            auth_scheme=self.config.auth_scheme,
            completed=completed,
            download=download,
            redactor=self._redactor,
        )

    def scrub(self, exc: E) -> E:
        """`exc` with the key masked in its args and attributes."""
        self._redactor.scrub(exc)
        return exc

    def redact(self, text: str) -> str:
        """`text` with the key masked."""
        return self._redactor.text(text)

    async def record(self, event: str, request_id: str, **fields: Any) -> None:
        """Append an event to the journal (when there is one).

        ``completed`` is written in the background (`Journal.append_soon`), off the path to the
        result: lost in a crash, it only leaves the job pending, and recovery fetches it again.
        Every other event is durable before this returns.
        """
        if self.journal is None:
            return
        if event == "completed":
            self.journal.append_soon(event, request_id, **fields)
        else:
            await self.journal.write(event, request_id, **fields)

    # --- the protocol ---------------------------------------------------------------------

    async def submit(
        self,
        input: FluxLoraInput | Mapping[str, Any] | str | None = None,
        /,
        *,
        start_timeout: float | None = None,
        headers: dict[str, str] | None = None,
        journal: Journal | None = None,
        journal_fields: dict[str, Any] | None = None,
        **fields: Any,
    ) -> RequestHandle:
        """Validate the input (InputError before any request), submit it, journal the id.

        The input is a FluxLoraInput, a dict of fields, the prompt as a string, or keywords.
        `start_timeout` sends ``X-Fal-Request-Timeout``: fal gives up (504, final) when the job
        has not started by then. A submit is never retried once the server may have accepted
        it. When its reply is unreadable, the ``x-fal-request-id`` header still identifies the
        job: it is journaled and its handle returned. `journal` (default: the client's) gets the
        request id, fsynced, before this returns; `journal_fields` go into each of its records.
        A local file the input names (LoRA path, image, mask) is uploaded first
        (`upload_local_files`, before the submit and never inside its retries); the submitted
        input carries its URL. The endpoint is the input model's (`ClientConfig.endpoint_for`).
        """
        params = validate_input(input, **fields)
        params, _ = await self.upload_local_files(params)
        endpoint = self.config.endpoint_for(params)
        extra = dict(headers or {})
        if start_timeout is not None:
            extra["X-Fal-Request-Timeout"] = f"{start_timeout:g}"
        response = await self._http.request(
            "submit",
            "POST",
            self.config.submit_url(endpoint),
            json=params.to_payload(),
            headers=extra,
            submit=True,
        )
        if response.is_error:
            raise self.error_for(response)
        request_id, urls = self._accepted(response)
        handle = RequestHandle(
            self,
            request_id,
            status_url=self._follow(urls.get("status_url"), request_id, "/status"),
            response_url=self._follow(urls.get("response_url"), request_id, ""),
            cancel_url=self._follow(urls.get("cancel_url"), request_id, "/cancel"),
            input=params,
            journal=journal if journal is not None else self.journal,
            journal_fields=journal_fields,
        )
        await handle.record(
            "submitted",
            endpoint=endpoint,
            base_url=self.config.base_url,
            status_url=handle.status_url,
            response_url=handle.response_url,
            cancel_url=handle.cancel_url,
            input=params.to_payload(),
        )
        return handle

    async def upload(
        self,
        path: str | Path,
        /,
        *,
        field: str = "path",
        kind: FileKind = "any",
        on_progress: ProgressCallback | None = None,
    ) -> str:
        """Upload a local file to fal's storage and return its URL (for ``loras[].path``,
        ``image_url``, ``mask_url``).

        The file is checked first (`InputError` naming `field`, before any request): it exists
        and is readable; ``kind="lora"`` (or a ``.safetensors`` name) must look like safetensors,
        ``kind="image"`` (or an image suffix) must decode. The same bytes uploaded before to the
        same storage, and not close to expiring, are not sent again (`upload_cache`).
        `on_progress(sent, total)` hears the bytes sent. Large files go up in parts
        (`UploadOptions`), each retried on its own.
        """
        listener = self.upload_progress
        if on_progress is None and listener is not None:

            def on_progress(sent: int, total: int) -> None:
                listener(str(path), sent, total)

        return await self._uploader.upload(path, field=field, kind=kind, on_progress=on_progress)

    async def upload_local_files(
        self, input: FluxLoraInput
    ) -> tuple[FluxLoraInput, dict[str, str]]:
        """`input` with every local file it names (LoRA paths, ``image_url``, ``mask_url``)
        replaced by its uploaded URL, and the map local path → URL. All files are checked
        before anything is sent; a local mask of another size than the local image is an
        `InputError` naming ``mask_url``."""
        return await upload_local_files(input, self.upload)

    def _accepted(self, response: httpx.Response) -> tuple[str, dict[str, str]]:
        """The request id and URLs of an accepted submit; falls back on the
        ``x-fal-request-id`` header when the body cannot be read."""
        header_id = response.headers.get("x-fal-request-id", "").strip()
        try:
            body = read_object(response, "submit")
            request_id = body.get("request_id")
            if not isinstance(request_id, str) or not request_id:
                raise ProtocolError("submit", "the reply has no 'request_id' string")
            if not _SAFE_ID.match(request_id):
                raise ProtocolError("submit", "the request id has characters ids never have")
        except ProtocolError as exc:
            if not _SAFE_ID.match(header_id):
                exc.problem += (
                    "; the server may have accepted (and billed) the job, so it was not "
                    "retried — look for it in your fal request history"
                )
                exc.message = f"unreadable reply to submit: {exc.problem}"
                exc.args = (exc.message,)
                exc.maybe_accepted = True
                raise self.scrub(exc) from None
            log.warning("unreadable submit reply (%s); using x-fal-request-id", exc.problem)
            return header_id, {}
        urls = {k: v for k, v in body.items() if k.endswith("_url") and isinstance(v, str)}
        return request_id, urls

    def _follow(self, returned: str | None, request_id: str, suffix: str) -> str:
        """The URL mode applied to a returned URL; ``auto`` never follows https → http."""
        if (
            returned
            and self.config.url_mode == "auto"
            and is_downgrade(returned, self.config.base_url)
        ):
            returned = None
        return self.config.choose_url(returned, request_id, suffix)

    def handle(
        self,
        request_id: str,
        *,
        journal: Journal | None = None,
        journal_fields: dict[str, Any] | None = None,
    ) -> RequestHandle:
        """A handle for an earlier request, by id (URLs built on the base URL); its events go
        to `journal` (default: the client's)."""
        if not isinstance(request_id, str) or not _SAFE_ID.match(request_id):
            message = "is not a request id (letters, digits, '-', '_' and '.'; fal's are UUIDs)"
            raise InputError([FieldProblem("request_id", str(request_id)[:80], message)])
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
        input: FluxLoraInput | Mapping[str, Any] | str | None = None,
        /,
        *,
        timeout: float | None = None,
        on_update: UpdateCallback | None = None,
        **fields: Any,
    ) -> FluxLoraOutput:
        """Submit, wait for completion and return the result.

        ``generate("a tiger eye", seed=7)``: the prompt may be the first argument.
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
        """An image's bytes: a ``data:image/*`` URI decoded, or an URL fetched without the key.

        The URL must pass the image URL policy (`UnsafeURLError` else): by its name, then by
        the addresses the name resolves to and the address actually connected to (not through
        a proxy or an injected transport: see `netguard`); redirects are followed (each hop
        checked), the download has an overall deadline and a minimum rate
        (`DownloadTooSlowError`), and its bytes and pixels are capped (`ResponseTooLargeError`).
        A 404/410 raises `ImageGoneError`.
        """
        url = image.url if isinstance(image, FluxImage) else image
        try:
            return await self._download(url)
        except UnsafeURLError as exc:
            raise self.scrub(exc) from None

    async def _download(self, url: str) -> bytes:
        limits = self.limits
        policy = URLPolicy(self.config.base_url, allow_private=limits.allow_private_hosts)
        policy.check_url(url)
        if url.strip().lower().startswith("data:"):
            if len(url) > limits.max_image_bytes * 4 // 3 + 1024:
                raise ResponseTooLargeError(
                    "image download", "the data: URI", limits.max_image_bytes
                )
            try:
                data = decode_data_uri(url.strip())[0]
            except ValueError as exc:
                raise ProtocolError("image download", str(exc)) from None
        else:
            response = await self._http.download(url, policy=policy)
            if response.is_error:
                raise self.error_for(response, download=True)
            data = response.content
        self._check_pixels(data)
        return data

    def _check_pixels(self, data: bytes) -> None:
        try:
            width, height = image_size(data)
        except ValueError:
            raise ProtocolError("image download", "the bytes are not an image") from None
        if width * height > self.limits.max_image_pixels:
            raise ResponseTooLargeError(
                "image download",
                f"the image ({width}×{height} pixels)",
                self.limits.max_image_pixels,
            )

    async def platform_get(self, path: str, params: dict[str, str]) -> httpx.Response:
        """GET ``{config.platform_url}{path}`` with the key (fal's platform API, e.g. prices);
        raises fluxwidget's `TransportError` when the network fails."""
        url = f"{self.config.platform_url}{path}"
        return await self._http.request("platform", "GET", url, params=params)

    async def list_requests(
        self,
        endpoint_id: str | None = None,
        *,
        start: datetime,
        end: datetime | None = None,
        status: str | None = None,
        request_id: str | None = None,
        with_payloads: bool = True,
        limit: int = PAGE_LIMIT,
        max_pages: int = MAX_PAGES,
    ) -> RequestListing:
        """The account's requests of `endpoint_id` (default: this client's endpoint) from
        `start` to `end`, from fal's platform API (see `fluxwidget.client.history`); raises the
        typed error of a refused or failed call (`NotFoundError` from a proxy without it)."""
        return await list_requests(
            self,
            endpoint_id or self.config.endpoint,
            start=start,
            end=end,
            status=status,
            request_id=request_id,
            with_payloads=with_payloads,
            limit=limit,
            max_pages=max_pages,
        )

    # --- blocking use ---------------------------------------------------------------------

    def generate_sync(
        self,
        input: FluxLoraInput | Mapping[str, Any] | str | None = None,
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


def _upload_cache(option: UploadCache | str | Path | bool | None) -> UploadCache | None:
    if isinstance(option, UploadCache):
        return option
    if option is False:
        return None
    if option is None or option is True:
        path = default_cache_path()
        return UploadCache(path) if path is not None else None
    return UploadCache(Path(option))
