"""Sweep wall time / ideal: N jobs with at most K in flight (a semaphore), per client, and
through fluxwidget's sweep runner.

Each client has its own emulator process with enough workers (K + 8), so the server never
queues; every job runs ``--steps`` x ``--seconds-per-step`` seconds. *ideal* is the sum of the
jobs' run times on the server divided by K (perfect packing, a client that costs nothing);
*wall* runs from the first submit to the last result in hand. Configurations and clients take
turns within each of ``--runs`` runs (rotating order); the table shows the median over runs and
the range.

``fluxwidget sweep``: `fluxwidget.sweeps.SweepRunner` (cap ``concurrency=K``) over a plan whose one
axis is the seed; it also downloads and saves every image with its record into a run folder
(a temporary directory), which the other rows do not do. It asks for step counts, as
`sweep()` in a notebook does for its grid; ``runner no steps`` is the same runner without them
(``step_logs=False``), as the ``fluxwidget sweep`` command runs it.

Run: .venv/bin/python benchmarks/bench_sweep.py [--runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from typing import Any

from _harness import (
    SHORT,
    ContenderClient,
    FluxwidgetClient,
    ServerProcess,
    Spread,
    client_names,
    header,
    job_input,
    make_client,
    write_json,
)

RUNNER = "fluxwidget sweep"
RUNNER_NO_STEPS = "runner no steps"
RUNNERS = (RUNNER, RUNNER_NO_STEPS)

CONFIGS = [(8, 4), (16, 8)] if SHORT else [(64, 8), (256, 32)]


async def sweep(
    client: ContenderClient,
    server: ServerProcess,
    jobs: int,
    in_flight: int,
    steps: int,
    first_seed: int,
) -> tuple[float, float, dict[str, Any]]:
    """(wall, ideal, server stats delta) for one sweep."""
    cap = asyncio.Semaphore(in_flight)

    async def one(seed: int) -> str:
        async with cap:
            handle = await client.submit(seed, steps)
            return await client.wait(handle)

    before = server.stats()
    start = time.monotonic()
    if isinstance(client, SweepRunnerClient):
        ids = await client.sweep(first_seed, jobs, in_flight, steps)
    else:
        ids = await asyncio.gather(*(one(first_seed + i) for i in range(jobs)))
    wall = time.monotonic() - start
    after = server.stats()
    times = server.jobs(ids)
    run_time = 0.0
    for value in times.values():
        assert value is not None
        _submitted, started, completed = value
        assert started is not None
        assert completed is not None
        run_time += completed - started
    routes = {k: v - before["routes"].get(k, 0) for k, v in after["routes"].items()}
    stats = {"routes": routes, "connections": after["opened"] - before["opened"]}
    return wall, run_time / in_flight, stats


class SweepRunnerClient(FluxwidgetClient):
    """fluxwidget's sweep runner (a run folder in a temporary directory)."""

    name = RUNNER

    def __init__(self, server: ServerProcess, *, step_logs: bool = True) -> None:
        super().__init__(server)
        self.step_logs = step_logs
        if not step_logs:
            self.name = RUNNER_NO_STEPS

    async def sweep(self, first_seed: int, jobs: int, in_flight: int, steps: int) -> list[str]:
        from fluxwidget.sweeps import SweepRunner, plan_sweep

        seeds = list(range(first_seed, first_seed + jobs))
        plan = plan_sweep(job_input(first_seed, steps), ("seed", seeds))
        with tempfile.TemporaryDirectory() as folder:
            runner = SweepRunner(
                self.client, plan, out=folder, concurrency=in_flight, step_logs=self.step_logs
            )
            await runner.run_all()
            ids = [record.request_id for record in runner.records.values()]
        assert all(ids), "a cell was not submitted"
        return [str(i) for i in ids]


def sweep_runner_available() -> bool:
    try:
        from fluxwidget.sweeps import SweepRunner  # noqa: F401
    except ImportError:
        return False
    return True


async def run(args: argparse.Namespace) -> dict[str, Any]:
    names = client_names()
    if sweep_runner_available():
        names[1:1] = RUNNERS
    workers = max(k for _n, k in CONFIGS) + 8
    servers = {
        n: ServerProcess(workers=workers, seconds_per_step=args.seconds_per_step) for n in names
    }
    clients = {
        name: SweepRunnerClient(servers[name], step_logs=name == RUNNER)
        if name in RUNNERS
        else make_client(name, servers[name])
        for name in names
    }
    results: dict[str, dict[str, Any]] = {}
    seed = 0
    try:
        for name in names:  # warm-up
            await sweep(clients[name], servers[name], 2, 2, args.steps, seed)
            seed += 2
        for run_index in range(args.runs):
            for jobs, in_flight in CONFIGS:
                shift = run_index % len(names)
                for name in names[shift:] + names[:shift]:
                    wall, ideal, stats = await sweep(
                        clients[name], servers[name], jobs, in_flight, args.steps, seed
                    )
                    seed += jobs
                    row = results.setdefault(f"{jobs}x{in_flight}", {}).setdefault(
                        name, {"wall": [], "ideal": [], "ratio": [], "req": [], "conn": []}
                    )
                    row["wall"].append(wall)
                    row["ideal"].append(ideal)
                    row["ratio"].append(wall / ideal)
                    row["req"].append(sum(stats["routes"].values()) / jobs)
                    row["conn"].append(stats["connections"] / jobs)
    finally:
        for client in clients.values():
            await client.aclose()
        for server in servers.values():
            server.close()
    return results


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    print(header())
    job_time = args.steps * args.seconds_per_step
    print(
        f"{args.runs} runs; each job {args.steps} steps x {args.seconds_per_step:g} s = "
        f"{job_time:g} s; server workers >= jobs in flight; loopback"
    )
    print("figures: median over runs (min-max)")
    for config, rows in results.items():
        print()
        jobs, in_flight = config.split("x")
        print(f"{jobs} jobs, {in_flight} in flight")
        head = f"{'client':<16} {'wall s':>20} {'ideal s':>8} {'wall/ideal':>20} {'req/job':>9}"
        print(head)
        print("-" * len(head))
        for name, row in rows.items():
            ideal = Spread(row["ideal"]).median
            print(
                f"{name:<16} {Spread(row['wall']).text(digits=2):>20} {ideal:>8.2f} "
                f"{Spread(row['ratio']).text(digits=3):>20} {Spread(row['req']).median:>9.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1 if SHORT else 3)
    parser.add_argument("--steps", type=int, default=2 if SHORT else 10)
    parser.add_argument("--seconds-per-step", type=float, default=0.1)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    report(results, args)
    write_json(args.json, {"args": vars(args), "configs": results})


if __name__ == "__main__":
    main()
