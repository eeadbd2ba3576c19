"""Shared parts of the network benchmarks: a server process per client, three clients, figures.

Every client gets its own emulator *process* (`ServerProcess`, see ``_server.py``), so the
server neither shares the GIL with the client nor mixes up the clients' counters. The three
clients do the same thing for one job (submit, wait, result in hand):

- ``fluxwidget``: `FluxClient.submit` + `RequestHandle.result` (SSE stream, polling fallback),
  with its journal on (a temporary file), as users have it;
- ``fal-client``: fal's own Python client, ``AsyncClient.submit`` + ``handle.get()`` (what
  ``subscribe`` does: it polls the status every 0.1 s). It is pointed at the emulator by one
  patch: ``fal_client.client.QUEUE_URL_FORMAT = f"{url}/"`` (the submit URL; status and result
  URLs come from the submit reply);
- ``floor``: a minimal hand-written httpx client, the least a client can do: one pooled
  ``httpx.AsyncClient``, POST, the SSE status stream read to its end (the server ends it right
  after COMPLETED, and the connection goes back to the pool), GET the result.

``BENCH_SHORT=1`` in the environment makes every benchmark pick its short settings (CI runs them
that way so the scripts cannot rot; the figures are then only a smoke test).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from httpx_sse import aconnect_sse

from fluxwidget.client import FluxClient

HERE = Path(__file__).resolve().parent
ENDPOINT = "fal-ai/flux-lora"
SHORT = os.environ.get("BENCH_SHORT", "") not in ("", "0")


def job_input(seed: int, steps: int) -> dict[str, Any]:
    """A small job: tiny images keep the server's rendering out of the figures."""
    return {
        "prompt": "benchmark",
        "num_inference_steps": steps,
        "seed": seed,
        "image_size": {"width": 64, "height": 64},
        "output_format": "jpeg",
    }


class ServerProcess:
    """An emulator in a child process; blocking JSON-lines control over its stdin/stdout."""

    def __init__(self, *, workers: int, seconds_per_step: float, run_jitter: float = 0.0) -> None:
        self._proc = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "_server.py"),
                "--workers",
                str(workers),
                "--seconds-per-step",
                str(seconds_per_step),
                "--run-jitter",
                str(run_jitter),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        hello = self._read()
        self.url: str = hello["url"]
        self.api_key: str = hello["api_key"]

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the emulator process ended")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def ask(self, cmd: str, **fields: Any) -> dict[str, Any]:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
        self._proc.stdin.flush()
        return self._read()

    def set_link(self, rtt: float, connect_rtts: float, stream_close: bool = False) -> None:
        """Emulate a link; `stream_close` ends each status stream with ``Connection: close``."""
        self.ask("link", rtt=rtt, connect_rtts=connect_rtts, stream_close=stream_close)

    def stats(self) -> dict[str, Any]:
        return self.ask("stats")

    def jobs(self, ids: Sequence[str]) -> dict[str, list[float | None] | None]:
        return self.ask("jobs", ids=list(ids))

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far."""
        fields = Path(f"/proc/{self._proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ask("stop")
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


class ContenderClient(Protocol):
    """One client under test in a side-by-side benchmark (fluxwidget, fal-client, bare httpx):
    an adapter for timing, not the client contract (that is `fluxwidget.client.protocols`)."""

    name: str

    async def submit(self, seed: int, steps: int) -> Any: ...

    async def wait(self, handle: Any) -> str:
        """Wait for the job and fetch its result; return the request id."""
        ...

    async def aclose(self) -> None: ...


class FluxwidgetClient:
    name = "fluxwidget"

    def __init__(self, server: ServerProcess, **options: Any) -> None:
        # the journal on, as users have it (a temporary file): "submitted" is fsynced before
        # any wait, "completed" written in the background
        journal = Path(tempfile.mkdtemp(prefix="fluxwidget-bench-")) / "journal.jsonl"
        self.client = FluxClient(
            api_key=server.api_key, base_url=server.url, journal=journal, **options
        )

    async def submit(self, seed: int, steps: int) -> Any:
        return await self.client.submit(job_input(seed, steps))

    async def wait(self, handle: Any) -> str:
        await handle.result()
        return str(handle.request_id)

    async def aclose(self) -> None:
        await self.client.aclose()


class FalClient:
    name = "fal-client"

    def __init__(self, server: ServerProcess) -> None:
        import fal_client
        import fal_client.client

        # the one patch: submit to the emulator (status/result URLs come from its reply)
        fal_client.client.QUEUE_URL_FORMAT = f"{server.url}/"
        self.client = fal_client.AsyncClient(key=server.api_key)

    async def submit(self, seed: int, steps: int) -> Any:
        return await self.client.submit(ENDPOINT, arguments=job_input(seed, steps))

    async def wait(self, handle: Any) -> str:
        await handle.get()
        return str(handle.request_id)

    async def aclose(self) -> None:
        http = self.client.__dict__.get("_client")  # async_cached_property's stored value
        if isinstance(http, httpx.AsyncClient):
            await http.aclose()


class FloorClient:
    """The least a client can do: POST, read the SSE stream to COMPLETED, GET the result.

    `split` ("floor split"): the streams get their own `httpx.AsyncClient`, so the submit and
    the result share a connection that stays warm whatever the server does with the stream's
    (a server may end a stream with ``Connection: close``).
    """

    name = "floor"

    def __init__(self, server: ServerProcess, *, split: bool = False) -> None:
        self.url = server.url

        def pool() -> httpx.AsyncClient:
            return httpx.AsyncClient(
                headers={"Authorization": f"Key {server.api_key}"},
                timeout=120,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
            )

        self.http = pool()
        self.streams = pool() if split else self.http
        if split:
            self.name = "floor split"

    async def submit(self, seed: int, steps: int) -> Any:
        reply = await self.http.post(f"{self.url}/{ENDPOINT}", json=job_input(seed, steps))
        reply.raise_for_status()
        return reply.json()

    async def wait(self, handle: Any) -> str:
        completed = False
        for attempt in (1, 2):  # a kept-alive connection may be closed by the server as we ask
            try:
                async with aconnect_sse(
                    self.streams, "GET", handle["status_url"] + "/stream"
                ) as source:
                    # read to the end of the stream (the server ends it right after COMPLETED):
                    # the connection goes back to the pool warm and the result call reuses it
                    async for event in source.aiter_sse():
                        completed = completed or json.loads(event.data)["status"] == "COMPLETED"
                break
            except httpx.TransportError:
                if attempt == 2:
                    raise
        assert completed
        for attempt in (1, 2):
            try:
                reply = await self.http.get(handle["response_url"])
                break
            except httpx.TransportError:
                if attempt == 2:
                    raise
        reply.raise_for_status()
        reply.json()
        return str(handle["request_id"])

    async def aclose(self) -> None:
        await self.http.aclose()
        if self.streams is not self.http:
            await self.streams.aclose()


def fal_client_available() -> bool:
    try:
        import fal_client  # noqa: F401
    except ImportError:
        return False
    return True


def make_client(name: str, server: ServerProcess, **options: Any) -> ContenderClient:
    if name == "fluxwidget":
        return FluxwidgetClient(server, **options)
    if name == "fal-client":
        return FalClient(server)
    return FloorClient(server, split=name == "floor split")


def client_names() -> list[str]:
    names = ["fluxwidget", "fal-client", "floor"]
    if not fal_client_available():
        print("fal-client is not installed (pip install -e '.[bench]'): left out")
        names.remove("fal-client")
    return names


@dataclass
class Spread:
    """The median of per-run figures and their range."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def text(self, scale: float = 1.0, digits: int = 1) -> str:
        if not self.values:
            return "-"
        lo, hi = min(self.values) * scale, max(self.values) * scale
        return f"{self.median * scale:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def rss_mib() -> float:
    """This process's resident memory in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_sockets() -> int:
    """How many sockets this process has open."""
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            if os.readlink(fd).startswith("socket:"):
                count += 1
    return count


def header() -> str:
    return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs" + (
        " (BENCH_SHORT: smoke-test settings)" if SHORT else ""
    )


def write_json(path: str | None, data: Any) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2, default=str))
