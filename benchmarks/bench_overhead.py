"""Per-call overhead of the client vs a bare ``httpx.AsyncClient`` GET of the same status URL.

One completed job on a loopback emulator; then ``--calls`` rounds, each making one call of every
kind below in a rotating order (so drift and warm-up hit all kinds alike):

- ``httpx``: a bare ``httpx.AsyncClient.get(status_url, params, headers)`` + ``response.json()``;
- ``transport``: the client's ``Transport.request`` (semaphore + tenacity retry loop, no
  parsing) + ``response.json()`` — private API, to split the cost;
- ``handle.status``: ``RequestHandle.status()`` (transport + error check + ``parse_status``);
- ``client.status``: ``FluxClient.status(request_id)`` (builds a new handle, then the same).

All four send the same headers (Accept, Authorization) and ``?logs=1`` to the same URL over
keep-alive connections. Latency is measured around each awaited call with ``perf_counter``.

Run: .venv/bin/python benchmarks/bench_overhead.py [--calls 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx

from fluxwidget.client import FluxClient
from fluxwidget.emulator import Emulator

SHORT = os.environ.get("BENCH_SHORT", "") not in ("", "0")
"""BENCH_SHORT=1: tiny settings, a smoke test (CI runs it so the script cannot rot)."""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> None:
    with Emulator(workers=2, seconds_per_step=0.01) as emu:
        client = FluxClient(api_key=emu.api_key, base_url=emu.url, journal=False)
        handle = await client.submit(prompt="bench", num_inference_steps=args.steps, seed=1)
        await handle.result()
        url = handle.status_url
        params = {"logs": "1"}
        headers = {"Accept": "application/json", "Authorization": f"Key {emu.api_key}"}
        transport = client.http  # to separate the transport from the parsing

        async with httpx.AsyncClient() as bare:

            async def via_httpx() -> None:
                response = await bare.get(url, params=params, headers=headers)
                response.raise_for_status()
                response.json()

            async def via_transport() -> None:
                response = await transport.request("status", "GET", url, params=params)
                response.raise_for_status()
                response.json()

            async def via_handle() -> None:
                await handle.status()

            async def via_client() -> None:
                await client.status(handle.request_id)

            kinds: dict[str, Callable[[], Awaitable[None]]] = {
                "httpx": via_httpx,
                "transport": via_transport,
                "handle.status": via_handle,
                "client.status": via_client,
            }
            times: dict[str, list[float]] = {name: [] for name in kinds}
            names = list(kinds)
            for _ in range(args.warmup):
                for call in kinds.values():
                    await call()
            before = len(emu.calls)
            for index in range(args.calls):
                shift = index % len(names)
                for name in names[shift:] + names[:shift]:
                    start = time.perf_counter()
                    await kinds[name]()
                    times[name].append(time.perf_counter() - start)
            served = len(emu.calls) - before
        await client.aclose()

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(
        f"{args.calls} status calls per kind, interleaved, after {args.warmup} warm-up rounds; "
        f"job with {args.steps} log lines; emulator served {served} calls "
        f"(expected {args.calls * len(names)})"
    )
    print()
    header = (
        f"{'kind':<14} {'median us':>10} {'p10 us':>8} {'p90 us':>8} {'mean us':>8} "
        f"{'vs httpx':>9} {'median - httpx us':>18}"
    )
    print(header)
    print("-" * len(header))
    base = statistics.median(times["httpx"])
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"{name:<14} {median * 1e6:>10.0f} {pct(values, 0.1) * 1e6:>8.0f} "
            f"{pct(values, 0.9) * 1e6:>8.0f} {statistics.fmean(values) * 1e6:>8.0f} "
            f"{median / base:>8.2f}x {(median - base) * 1e6:>18.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--calls", type=int, default=20 if SHORT else 200, help="timed calls per kind"
    )
    parser.add_argument(
        "--warmup", type=int, default=2 if SHORT else 20, help="untimed rounds first"
    )
    parser.add_argument("--steps", type=int, default=28, help="steps (= log lines) of the job")
    args = parser.parse_args()
    if not (1 <= args.calls <= 5000 and 1 <= args.steps <= 50):
        parser.error("--calls must be within 1..5000 and --steps within 1..50")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
