"""N jobs with asyncio.gather vs one after another, and what ``max_concurrency`` caps.

One loopback emulator with ``--workers`` workers (default 4). Each repeat runs, in turn:

- ``sequential``: N ``await client.generate(...)`` one after another (max_concurrency=8);
- ``gather mc=8``: N ``client.generate(...)`` under ``asyncio.gather`` (max_concurrency=8);
- ``gather mc=1``: the same with a client made with ``max_concurrency=1``;
- ``gather mc=8 ms=2``: the same with ``max_streams=2`` (default 32), so the jobs beyond two
  poll (running jobs take streams from queued ones) — what a small stream budget costs.

The order of the modes rotates between repeats. "Peak running" is the largest number of jobs
IN_PROGRESS at once on the emulator, computed from each job's ``started_at``/``completed_at``
(read from the emulator's scheduler, a private attribute: ``JobInfo`` has no timestamps).

Run: .venv/bin/python benchmarks/bench_concurrency.py [--jobs 8] [--repeat 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from fluxwidget.client import FluxClient
from fluxwidget.emulator import Emulator
from fluxwidget.schema import FluxLoraOutput

SHORT = os.environ.get("BENCH_SHORT", "") not in ("", "0")
"""BENCH_SHORT=1: tiny settings, a smoke test (CI runs it so the script cannot rot)."""


def peak_running(emu: Emulator, since: int) -> int:
    """Most jobs in progress at once among the jobs submitted after the first `since`."""
    jobs = list(emu.jobs.values())[since:]
    edges: list[tuple[float, int]] = []
    for job in jobs:
        assert job.started_at is not None
        assert job.completed_at is not None
        edges += [(job.started_at, 1), (job.completed_at, -1)]
    running = peak = 0
    for _when, delta in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        running += delta
        peak = max(peak, running)
    return peak


async def sequential(client: FluxClient, jobs: int, steps: int) -> list[FluxLoraOutput]:
    return [
        await client.generate(prompt=f"job {i}", num_inference_steps=steps, seed=i)
        for i in range(jobs)
    ]


async def gathered(client: FluxClient, jobs: int, steps: int) -> list[FluxLoraOutput]:
    return list(
        await asyncio.gather(
            *(
                client.generate(prompt=f"job {i}", num_inference_steps=steps, seed=i)
                for i in range(jobs)
            )
        )
    )


async def run(args: argparse.Namespace) -> None:
    Runner = Callable[[FluxClient, int, int], Awaitable[list[FluxLoraOutput]]]
    walls: dict[str, list[float]] = {}
    peaks: dict[str, list[int]] = {}
    calls: dict[str, Counter[str]] = {}
    with Emulator(workers=args.workers, seconds_per_step=args.seconds_per_step) as emu:
        wide = FluxClient(api_key=emu.api_key, base_url=emu.url, journal=False, max_concurrency=8)
        narrow = FluxClient(api_key=emu.api_key, base_url=emu.url, journal=False, max_concurrency=1)
        streams = FluxClient(
            api_key=emu.api_key, base_url=emu.url, journal=False, max_concurrency=8, max_streams=2
        )
        clients = (wide, narrow, streams)
        modes: dict[str, tuple[FluxClient, Runner]] = {
            "sequential mc=8": (wide, sequential),
            "gather mc=8": (wide, gathered),
            "gather mc=1": (narrow, gathered),
            "gather mc=8 ms=2": (streams, gathered),
        }
        for client in clients:  # warm-up: connections, imports
            await gathered(client, 2, 1)
        names = list(modes)
        for repeat in range(args.repeat):
            shift = repeat % len(names)
            for name in names[shift:] + names[:shift]:
                client, runner = modes[name]
                since_jobs, since_calls = len(emu.jobs), len(emu.calls)
                start = time.monotonic()
                outputs = await runner(client, args.jobs, args.steps)
                walls.setdefault(name, []).append(time.monotonic() - start)
                assert len(outputs) == args.jobs
                peaks.setdefault(name, []).append(peak_running(emu, since_jobs))
                counter = calls.setdefault(name, Counter())
                for _method, path, _code in emu.calls[since_calls:]:
                    kind = "stream" if path.endswith("/stream") else path.rsplit("/", 1)[-1]
                    counter["status" if kind == "status" else kind] += 1
        for client in clients:
            await client.aclose()

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    job_time = args.steps * args.seconds_per_step
    waves = -(-args.jobs // args.workers)
    print(
        f"{args.jobs} jobs x {args.steps} steps x {args.seconds_per_step:g} s/step "
        f"(~{job_time:.2f} s each + render), emulator workers={args.workers}, "
        f"{args.repeat} repeats"
    )
    print(
        f"ideal: sequential ~{args.jobs * job_time:.2f} s, "
        f"gathered ~{waves * job_time:.2f} s ({waves} waves of {args.workers})"
    )
    print()
    header = (
        f"{'mode':<17} {'wall median s':>14} {'min s':>7} {'max s':>7} {'peak running':>13} "
        f"{'stream/job':>11} {'status/job':>11}"
    )
    print(header)
    print("-" * len(header))
    medians: dict[str, float] = {}
    for name in names:
        medians[name] = statistics.median(walls[name])
        counter = calls[name]
        runs = args.jobs * args.repeat
        print(
            f"{name:<17} {medians[name]:>14.3f} {min(walls[name]):>7.3f} {max(walls[name]):>7.3f} "
            f"{max(peaks[name]):>13d} {counter['stream'] / runs:>11.2f} "
            f"{counter['status'] / runs:>11.2f}"
        )
    print()
    seq = medians["sequential mc=8"]
    print(f"speed-up, gather mc=8 vs sequential:  {seq / medians['gather mc=8']:6.2f}x")
    print(f"speed-up, gather mc=1 vs sequential:  {seq / medians['gather mc=1']:6.2f}x")
    print(f"speed-up, gather mc=8 ms=2 vs seq.:   {seq / medians['gather mc=8 ms=2']:6.2f}x")
    print(
        f"gather mc=1 / gather mc=8 wall:       "
        f"{medians['gather mc=1'] / medians['gather mc=8']:6.2f}x"
    )
    print(
        f"gather mc=8 ms=2 / mc=8 (32 streams): "
        f"{medians['gather mc=8 ms=2'] / medians['gather mc=8']:5.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4 if SHORT else 8, help="jobs per run")
    parser.add_argument("--repeat", type=int, default=1 if SHORT else 4, help="runs per mode")
    parser.add_argument("--workers", type=int, default=4, help="emulator workers (default 4)")
    parser.add_argument("--steps", type=int, default=3 if SHORT else 10, help="steps per job")
    parser.add_argument(
        "--seconds-per-step", type=float, default=0.05, help="emulator time per step"
    )
    args = parser.parse_args()
    if not (1 <= args.steps <= 50):
        parser.error("--steps must be within 1..50")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
