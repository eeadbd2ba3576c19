"""SSE status stream vs polling: how late the client notices completion, and HTTP calls per job.

Both modes run the same jobs against one loopback emulator, interleaved (SSE job, polling job,
SSE job, ...), one job at a time so each job's HTTP calls can be counted from ``emu.calls``.
Job i runs ``min_steps + i`` steps, so the completions fall at different points between two
polls (with one fixed length every job completes at the same phase of the poll grid and the
polling delay comes out nearly the same, low or high, for all jobs).

"Notice delay" is the client's ``time.monotonic()`` when its ``on_update`` callback receives
``Completed``, minus the emulator's ``Job.completed_at`` (the same monotonic clock: the emulator
runs in a thread of this process). ``completed_at`` is read from the emulator's scheduler, a
private attribute: ``JobInfo`` has no timestamps.

Run: .venv/bin/python benchmarks/bench_status_updates.py [--jobs 12] [--min-steps 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

from _server import route_of

from fluxwidget.client import FluxClient
from fluxwidget.client.status import Completed, StatusUpdate
from fluxwidget.emulator import Emulator

SHORT = os.environ.get("BENCH_SHORT", "") not in ("", "0")
"""BENCH_SHORT=1: tiny settings, a smoke test (CI runs it so the script cannot rot)."""


@dataclass
class Sample:
    """One job in one mode."""

    notice: float
    """Seconds from the emulator completing the job to the client seeing Completed."""
    wall: float
    """generate() wall time."""
    model: float
    """The emulator's modelled time: from the job's start to its completion."""
    calls: Counter[str] = field(default_factory=Counter)


async def one_job(emu: Emulator, client: FluxClient, steps: int, seed: int) -> Sample:
    seen: dict[str, float] = {}

    def on_update(update: StatusUpdate) -> None:
        if isinstance(update, Completed):
            seen[update.request_id] = time.monotonic()

    before = len(emu.calls)
    start = time.monotonic()
    await client.generate(prompt="bench", num_inference_steps=steps, seed=seed, on_update=on_update)
    wall = time.monotonic() - start
    calls = Counter(route_of(path) for _method, path, _code in emu.calls[before:])
    ((request_id, seen_at),) = seen.items()
    job = emu.job(request_id)
    assert job is not None
    assert job.completed_at is not None
    assert job.started_at is not None
    return Sample(
        notice=seen_at - job.completed_at,
        wall=wall,
        model=job.completed_at - job.started_at,
        calls=calls,
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> None:
    modes = {"sse": True, "polling": False}
    samples: dict[str, list[Sample]] = {name: [] for name in modes}
    with Emulator(workers=2, seconds_per_step=args.seconds_per_step) as emu:
        clients = {
            name: FluxClient(api_key=emu.api_key, base_url=emu.url, journal=False, use_sse=use_sse)
            for name, use_sse in modes.items()
        }
        poll_interval = clients["polling"].poll_interval
        for client in clients.values():  # warm-up: connections, imports
            await client.generate(prompt="warm-up", num_inference_steps=1, seed=0)
        for index in range(args.jobs):
            order = list(modes) if index % 2 == 0 else list(reversed(modes))
            steps = args.min_steps + index
            for name in order:
                samples[name].append(await one_job(emu, clients[name], steps, index))
        for client in clients.values():
            await client.aclose()

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(
        f"{args.jobs} jobs per mode, {args.min_steps}..{args.min_steps + args.jobs - 1} steps x "
        f"{args.seconds_per_step:g} s/step "
        f"(modelled runs {args.min_steps * args.seconds_per_step:.2f}.."
        f"{(args.min_steps + args.jobs - 1) * args.seconds_per_step:.2f} s + render), "
        f"polling at the default poll_interval={poll_interval:g} s"
    )
    print()
    header = (
        f"{'mode':<8} {'notice median ms':>17} {'p90 ms':>8} {'max ms':>8} "
        f"{'wall-model median ms':>21} {'HTTP calls/job':>15}  calls by route (per job)"
    )
    print(header)
    print("-" * len(header))
    summary: dict[str, dict[str, float]] = {}
    for name, rows in samples.items():
        notice = [s.notice for s in rows]
        extra = [s.wall - s.model for s in rows]
        total = Counter[str]()
        for s in rows:
            total.update(s.calls)
        calls_per_job = sum(total.values()) / len(rows)
        by_route = ", ".join(f"{k} {v / len(rows):.1f}" for k, v in sorted(total.items()))
        summary[name] = {
            "notice": statistics.median(notice),
            "extra": statistics.median(extra),
            "calls": calls_per_job,
        }
        print(
            f"{name:<8} {ms(statistics.median(notice)):>17} {ms(pct(notice, 0.9)):>8} "
            f"{ms(max(notice)):>8} {ms(statistics.median(extra)):>21} "
            f"{calls_per_job:>15.1f}  {by_route}"
        )
    print()
    sse, poll = summary["sse"], summary["polling"]
    print(f"notice delay, polling / SSE (medians):     {poll['notice'] / sse['notice']:8.1f}x")
    print(f"wall - modelled time, polling / SSE:       {poll['extra'] / sse['extra']:8.2f}x")
    print(f"HTTP calls per job, polling / SSE:         {poll['calls'] / sse['calls']:8.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2 if SHORT else 12, help="jobs per mode")
    parser.add_argument(
        "--min-steps", type=int, default=8, help="steps of job 0; job i runs min_steps + i"
    )
    parser.add_argument(
        "--seconds-per-step", type=float, default=0.08, help="emulator time per step"
    )
    args = parser.parse_args()
    if not (args.min_steps >= 1 and args.min_steps + args.jobs - 1 <= 50):
        parser.error("steps must stay within 1..50 (min_steps + jobs - 1 <= 50)")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
