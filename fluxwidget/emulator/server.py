"""Run the emulator: a uvicorn server on loopback, in a background thread with its own loop."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from fluxwidget.emulator.app import EmulatorApp, LoraURLs
from fluxwidget.emulator.faults import Fault, FaultBook, TransportMap
from fluxwidget.emulator.jobs import Job, Scheduler
from fluxwidget.emulator.link import ConnectionStats, LinkConditions, link_protocol
from fluxwidget.emulator.outputs import FileStore, produce
from fluxwidget.emulator.storage import UploadStore

T = TypeVar("T")

STARTUP_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def _tracking_protocol(
    transports: TransportMap, link: LinkConditions, stats: ConnectionStats
) -> type[H11Protocol]:
    """uvicorn's h11 protocol behind the emulated link, recording each connection's transport
    by peer address."""

    base = link_protocol(link, stats)

    class TrackingH11Protocol(base):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            if self.client is not None:
                transports[(self.client[0], self.client[1])] = transport
            # asyncio sets TCP_NODELAY itself only when the socket's proto is IPPROTO_TCP;
            # without it every reply waits ~40 ms for the client's delayed ACK.
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def connection_lost(self, exc: Exception | None) -> None:
            if self.client is not None:
                transports.pop((self.client[0], self.client[1]), None)
            super().connection_lost(exc)

    return TrackingH11Protocol


def generate_api_key() -> str:
    """A fresh key shaped like fal's ``key_id:key_secret``."""
    return f"emulator-{secrets.token_hex(4)}:{secrets.token_hex(16)}"


@dataclass(frozen=True)
class JobInfo:
    """A snapshot of one job, for tests."""

    request_id: str
    state: str
    queue_position: int | None
    input: Any
    """The submitted JSON body."""
    valid: bool
    seed: int
    subpath: str
    logs: tuple[str, ...]
    cancel_requested: bool
    result_status: int | None
    """The status code the result call answers once completed, else None."""
    submitted_at: float
    """`time.monotonic()` when the job was accepted (same clock as the two below)."""
    started_at: float | None
    completed_at: float | None


@dataclass(frozen=True)
class UploadInfo:
    """One file uploaded to the emulator's storage, for tests."""

    url: str
    """Its access URL (where the emulator serves it)."""
    name: str
    content_type: str
    size: int
    sha256: str
    lifetime: int | None
    """The ``expiration_duration_seconds`` the client asked for."""
    parts: int
    """How many parts it came in (0: a single upload)."""


def _snapshot(scheduler: Scheduler, job: Job) -> JobInfo:
    return JobInfo(
        request_id=job.request_id,
        state=job.state.value,
        queue_position=scheduler.position(job),
        input=job.payload,
        valid=job.input is not None,
        seed=job.seed,
        subpath=job.subpath,
        logs=tuple(entry["message"] for entry in job.logs),
        cancel_requested=job.cancel_requested,
        result_status=job.outcome.status_code if job.outcome else None,
        submitted_at=job.submitted_at,
        started_at=job.started_at,
        completed_at=job.completed_at,
    )


def _cancel_remaining(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel and reap the tasks still pending on a loop that has stopped running."""
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


class Emulator:
    """A fal-compatible queue for ``fal-ai/flux-lora`` on loopback, with placeholder images.

    >>> with Emulator(seconds_per_step=0.01) as emu:  # doctest: +SKIP
    ...     emu.url, emu.api_key
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        workers: int = 2,
        seconds_per_step: float = 0.08,
        result_ttl: float = 3600.0,
        keepalive_interval: float = 15.0,
        public_url: str | None = None,
        rtt: float = 0.0,
        connect_rtts: float = 0.0,
        run_jitter: float = 0.0,
        lora_urls: LoraURLs = "any",
        stream_connection_close: bool = False,
    ) -> None:
        """``public_url`` overrides the base of the URLs written into replies.

        Storage (fal's upload protocol) is served on the emulator's own URL. ``lora_urls``
        says which LoRA URLs a submit may name: ``"any"`` (default) accepts every http(s) URL
        and Hugging Face id, ``"own"`` only files uploaded to this emulator (and Hugging Face
        ids). A local file path is always refused with a 422 at submit, as is a URL on the
        emulator's host that its storage does not hold. ``stream_connection_close`` ends every
        status stream with ``Connection: close`` (as a server or proxy may): the stream's
        connection is not reused.

        ``rtt`` and ``connect_rtts`` emulate a network link (see `set_link`); ``run_jitter``
        adds a random 0..run_jitter seconds to each job's run time, so that completions fall at
        random phases of a client's polling.
        """
        self.host = host
        self.port = port
        self._requested_port = port
        self._api_key = api_key or generate_api_key()
        self._transports: TransportMap = {}
        self._faults = FaultBook()
        self._link = LinkConditions(rtt=rtt, connect_rtts=connect_rtts)
        self._connections = ConnectionStats()
        self._store = FileStore()
        self._uploads = UploadStore()
        self._scheduler = Scheduler(
            workers=workers,
            seconds_per_step=seconds_per_step,
            result_ttl=result_ttl,
            produce=functools.partial(produce, self._store),
            run_jitter=run_jitter,
        )
        self._app = EmulatorApp(
            api_key=self._api_key,
            scheduler=self._scheduler,
            store=self._store,
            faults=self._faults,
            transports=self._transports,
            keepalive_interval=keepalive_interval,
            public_url=public_url,
            uploads=self._uploads,
            lora_urls=lora_urls,
            stream_connection_close=stream_connection_close,
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321`` (known once started)."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_key(self) -> str:
        """The key clients must send as ``Key <key>`` or ``Bearer <key>``."""
        return self._api_key

    def start(self) -> Emulator:
        """Bind the socket, start serving, and return once it accepts connections."""
        with self._lock:
            if self.running:
                return self
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, self._requested_port))
            except OSError:
                sock.close()
                raise
            self.port = sock.getsockname()[1]
            self._scheduler.closed = False
            self._app.closing = asyncio.Event()
            config = uvicorn.Config(
                self._app,
                log_level="warning",
                log_config=None,
                access_log=False,
                lifespan="off",
                ws="none",
                http=_tracking_protocol(self._transports, self._link, self._connections),
                timeout_graceful_shutdown=1,
            )
            server = uvicorn.Server(config)
            self._server = server
            started = threading.Event()
            thread = threading.Thread(
                target=self._run, args=(server, sock, started), name="fluxwidget-emulator"
            )
            thread.daemon = True
            self._thread = thread
            thread.start()
            started.wait(STARTUP_TIMEOUT)
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError("the emulator did not start")
                time.sleep(0.005)
            self._wait_accepting()
            _RUNNING_URLS.add(self.url)
            return self

    def _wait_accepting(self) -> None:
        host = "127.0.0.1" if self.host in {"0.0.0.0", ""} else self.host
        with socket.create_connection((host, self.port), timeout=STARTUP_TIMEOUT):
            pass

    def _run(self, server: uvicorn.Server, sock: socket.socket, started: threading.Event) -> None:
        # A private loop rather than asyncio.run(), which nest_asyncio (used in notebooks)
        # replaces with a version that needs a current loop in this thread.
        loop = asyncio.new_event_loop()
        self._loop = loop
        started.set()
        try:
            loop.run_until_complete(self._serve(server, sock))
        finally:
            try:
                _cancel_remaining(loop)
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()
                sock.close()

    async def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            await self._scheduler.close()

    def stop(self) -> None:
        """Stop serving: end streams and jobs, close connections, join the thread."""
        with self._lock:
            thread, server, loop = self._thread, self._server, self._loop
            if thread is None or server is None or loop is None:
                return
            _RUNNING_URLS.discard(self.url)
            if thread.is_alive():

                async def begin_close() -> None:
                    self._app.closing.set()
                    await self._scheduler.close()
                    server.should_exit = True

                try:
                    asyncio.run_coroutine_threadsafe(begin_close(), loop).result(STOP_TIMEOUT)
                except RuntimeError:  # the loop is already gone
                    server.should_exit = True
                thread.join(STOP_TIMEOUT)
            self._thread = self._server = self._loop = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (
            f"Emulator(url={self.url!r}, workers={self._scheduler.workers}, "
            f"seconds_per_step={self._scheduler.seconds_per_step}, {state})"
        )

    # --- faults -----------------------------------------------------------------------------

    def inject(
        self,
        route: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        drop: bool = False,
        delay: float = 0.0,
        times: int = 1,
        headers: dict[str, str] | None = None,
        after_accept: bool = False,
        body: str | bytes | None = None,
        content_type: str = "application/json",
        truncate: int | None = None,
        pad: int | None = None,
        drip: float | None = None,
        stall: float | None = None,
        keepalive_only: bool = False,
        redirect: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``route`` fail, drop, stall or answer oddly.

        ``route`` is one of submit, status, stream, result, cancel, file, listing (fal's
        request listing). A call waits
        ``delay`` seconds, then has its connection dropped (``drop``), or gets ``status`` with a
        JSON ``detail`` (plus ``Retry-After`` and ``headers``), or else is answered normally.
        For submit, ``after_accept=True`` applies the fault after the job was accepted.

        Odd replies: ``body`` (raw, ``{key}`` becomes the key; with ``content_type``),
        ``redirect`` (302 to a URL, ``{path}`` the original path), ``keepalive_only`` (a stream
        of keep-alives only). Altered real replies: ``truncate`` (cut to N bytes), ``pad`` (grown
        to N bytes), ``drip`` (one byte per N seconds), ``stall`` (N seconds after the headers).
        """
        fault = Fault(
            route=route,
            status=status,
            retry_after=retry_after,
            drop=drop,
            delay=delay,
            times=times,
            headers=dict(headers or {}),
            after_accept=after_accept,
            body=body,
            content_type=content_type,
            truncate=truncate,
            pad=pad,
            drip=drip,
            stall=stall,
            keepalive_only=keepalive_only,
            redirect=redirect,
        )
        self._faults.add(fault)

    def clear_faults(self) -> None:
        """Forget every injected fault that has not fired yet."""
        self._faults.clear()

    # --- the emulated link -----------------------------------------------------------------

    def set_link(self, *, rtt: float = 0.0, connect_rtts: float = 0.0) -> None:
        """Emulate a link from now on: ``rtt`` seconds per round trip (half each way, on every
        chunk) and ``connect_rtts`` extra round trips before a new connection's first request
        (2 is about a TCP and a TLS handshake). ``set_link()`` goes back to plain loopback."""
        checked = LinkConditions(rtt=rtt, connect_rtts=connect_rtts)
        self._link.rtt, self._link.connect_rtts = checked.rtt, checked.connect_rtts

    def set_stream_connection_close(self, close: bool) -> None:
        """End the status streams started from now on with ``Connection: close`` (or not)."""
        self._app.stream_connection_close = bool(close)

    @property
    def connections(self) -> ConnectionStats:
        """TCP connections accepted so far (``opened``), open now, and at most at once."""
        stats = self._connections
        return ConnectionStats(stats.opened, stats.open, stats.peak_open)

    # --- inspection (for tests) -------------------------------------------------------------

    @property
    def submit_count(self) -> int:
        """How many submits were accepted (including those whose reply was lost)."""
        return self._app.submit_count

    @property
    def calls(self) -> list[tuple[str, str, int]]:
        """Every call so far as (method, path, status code); 0 for a dropped connection."""
        return list(self._app.calls)

    @property
    def authorizations(self) -> list[tuple[str, str, str]]:
        """Every call so far as (method, path, Authorization header as sent, "" if none)."""
        return list(self._app.authorizations)

    @property
    def uploads(self) -> list[UploadInfo]:
        """Every file uploaded to the emulator's storage, in the order they were completed."""
        return [
            UploadInfo(
                url=f"{self.url}/uploads/{f.file_id}/{f.name}",
                name=f.name,
                content_type=f.content_type,
                size=len(f.data),
                sha256=f.sha256,
                lifetime=f.lifetime,
                parts=f.parts,
            )
            for f in self._uploads.completed()
        ]

    def _on_loop(self, fn: Callable[[], T]) -> T:
        loop = self._loop
        if loop is None or not self.running:
            return fn()
        try:
            if asyncio.get_running_loop() is loop:
                return fn()
        except RuntimeError:
            pass
        future: Future[T] = Future()

        def call() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(call)
        return future.result(STOP_TIMEOUT)

    def job(self, request_id: str) -> JobInfo | None:
        """A snapshot of a job, or None for an unknown id."""

        def look() -> JobInfo | None:
            job = self._scheduler.jobs.get(request_id)
            return None if job is None else _snapshot(self._scheduler, job)

        return self._on_loop(look)

    @property
    def jobs(self) -> dict[str, JobInfo]:
        """Snapshots of every job by request id, in submit order."""
        scheduler = self._scheduler
        return self._on_loop(
            lambda: {k: _snapshot(scheduler, j) for k, j in scheduler.jobs.items()}
        )

    def expire(self, request_id: str) -> None:
        """Make a job's result expire now (its result call then answers 404)."""

        def expire() -> None:
            job = self._scheduler.jobs.get(request_id)
            if job is None:
                raise KeyError(request_id)
            self._scheduler.expire(job)

        self._on_loop(expire)


_RUNNING_URLS: set[str] = set()


def is_emulator_url(url: str) -> bool:
    """True when `url` is the address of an emulator started by this process."""
    return url.rstrip("/") in _RUNNING_URLS


class EmulatorProcess:
    """The emulator in a child process (so rendering placeholders never lags the kernel).

    The child serves until its stdin closes: when this process exits or is killed, the pipe
    closes and the child stops; `stop()` closes it explicitly. It ignores Ctrl-C and the
    kernel's "interrupt" (its own session), like the emulator thread it replaces.
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._api_key = generate_api_key()
        self._process: subprocess.Popen[str] | None = None
        self._url = ""

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        return self._url

    @property
    def api_key(self) -> str:
        """The key clients must send."""
        return self._api_key

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """True while the child process runs."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmulatorProcess:
        """Start the child and wait until it serves."""
        if self.running:
            return self
        env = {**os.environ, _KEY_ENV: self._api_key, _OPTIONS_ENV: json.dumps(self._options)}
        process = subprocess.Popen(
            [sys.executable, "-c", "from fluxwidget.emulator.server import _child; _child()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            start_new_session=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("http://"):
            process.kill()
            process.wait()
            raise RuntimeError(f"the emulator process did not start (it said {line!r})")
        self._process, self._url = process, line
        _RUNNING_URLS.add(line)
        return self

    def stop(self) -> None:
        """Stop the child: close its stdin, wait a moment, kill it if it lingers."""
        process, self._process = self._process, None
        _RUNNING_URLS.discard(self._url)
        if process is None:
            return
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"EmulatorProcess(url={self._url!r}, pid={self.pid}, {state})"


_KEY_ENV = "FLUXWIDGET_EMULATOR_KEY"
_OPTIONS_ENV = "FLUXWIDGET_EMULATOR_OPTIONS"


def _child() -> None:
    """The child of EmulatorProcess: serve, print the URL, stop when stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    options = json.loads(os.environ.pop(_OPTIONS_ENV, "{}") or "{}")
    emulator = Emulator(api_key=os.environ.pop(_KEY_ENV), **options).start()
    print(emulator.url, flush=True)
    try:
        sys.stdin.read()  # returns at EOF: the parent closed the pipe or died
    finally:
        emulator.stop()


_shared: EmulatorProcess | None = None
_shared_lock = threading.Lock()


def shared_emulator() -> EmulatorProcess:
    """The process-wide emulator (in a child process), started on first use.

    It stops when this process exits, however it exits (the child watches a pipe).
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = EmulatorProcess()
            atexit.register(_shared.stop)
        if not _shared.running:
            _shared.start()
        return _shared


def serve(host: str = "127.0.0.1", port: int = 8765, **options: Any) -> None:
    """Serve until Ctrl-C (``python -m fluxwidget emulator``)."""
    emulator = Emulator(host=host, port=port, **options).start()
    print(f"FLUX emulator (fal-ai/flux-lora) serving at {emulator.url}", flush=True)
    print(f"API key: {emulator.api_key}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while emulator.running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
