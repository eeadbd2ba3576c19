"""Many jobs waiting: client CPU, status requests per second, sockets and memory while N jobs sit
in the queue — fluxwidget vs fal-client, each against its own emulator process.

The server has one worker and long jobs (``--job-seconds``), so the queue barely moves. The
client submits ``--jobs`` jobs, starts waiting for all of them at once (fluxwidget:
``handle.result()``; fal-client: ``handle.get()``), lets ``--settle`` seconds pass, then measures
for ``--window`` seconds: the client process's CPU time (it runs only the client; the server is
another process), the status and stream calls the server received, the client's open sockets and
its resident memory (growth since before the submits). Then the waits are cancelled and the
server process is stopped (its jobs with it).

Run: .venv/bin/python benchmarks/bench_waiting.py [--jobs 1000] [--window 40] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import Any

from _harness import (
    SHORT,
    ServerProcess,
    client_names,
    header,
    make_client,
    open_sockets,
    rss_mib,
    write_json,
)


async def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    server = ServerProcess(workers=1, seconds_per_step=args.job_seconds / 4)
    client = make_client(name, server)
    tasks: list[asyncio.Task[str]] = []
    try:
        rss_before = rss_mib()
        start = time.monotonic()
        handles = [await client.submit(seed, 4) for seed in range(args.jobs)]
        submit_time = time.monotonic() - start
        tasks = [asyncio.create_task(client.wait(handle)) for handle in handles]
        await asyncio.sleep(args.settle)
        before = server.stats()
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(args.window)
        cpu1, wall1 = time.process_time(), time.monotonic()
        after = server.stats()
        sockets = open_sockets()
        rss = rss_mib()
        elapsed = wall1 - wall0
        status = after["routes"].get("status", 0) - before["routes"].get("status", 0)
        streams = after["routes"].get("stream", 0) - before["routes"].get("stream", 0)
        return {
            "jobs": args.jobs,
            "submit_s": submit_time,
            "cpu_share": (cpu1 - cpu0) / elapsed,
            "status_per_s": status / elapsed,
            "streams_opened_per_s": streams / elapsed,
            "server_open_connections": after["open"],
            "client_sockets": sockets,
            "rss_growth_mib": rss - rss_before,
            "window_s": elapsed,
        }
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        await client.aclose()
        server.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    names = [name for name in client_names() if name != "floor"]
    return {name: await measure(name, args) for name in names}


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    print(header())
    print(
        f"{args.jobs} jobs queued behind 1 worker ({args.job_seconds:g} s jobs); measured for "
        f"{args.window:g} s after {args.settle:g} s"
    )
    print()
    head = (
        f"{'client':<11} {'CPU % of a core':>16} {'status req/s':>13} {'streams/s':>10} "
        f"{'sockets':>8} {'server conns':>13} {'RSS growth MiB':>15} {'submit s':>9}"
    )
    print(head)
    print("-" * len(head))
    for name, row in results.items():
        print(
            f"{name:<11} {row['cpu_share'] * 100:>16.1f} {row['status_per_s']:>13.1f} "
            f"{row['streams_opened_per_s']:>10.2f} {row['client_sockets']:>8d} "
            f"{row['server_open_connections']:>13d} {row['rss_growth_mib']:>15.1f} "
            f"{row['submit_s']:>9.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50 if SHORT else 1000)
    parser.add_argument("--job-seconds", type=float, default=600.0)
    parser.add_argument("--settle", type=float, default=0.5 if SHORT else 5.0)
    parser.add_argument("--window", type=float, default=1.5 if SHORT else 40.0)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    report(results, args)
    write_json(args.json, {"args": vars(args), "clients": results})


if __name__ == "__main__":
    main()
