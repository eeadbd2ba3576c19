"""Completion→result latency, per-job overhead, requests and new connections per job, on loopback
and over an emulated link — fluxwidget vs fal-client vs minimal hand-written stream clients (one
pool: "floor"; streams in a pool of their own: "floor split").

Each client has its own emulator process (see ``_harness.py``). For each link (loopback, then a
20 ms and a 100 ms round trip where a new connection costs 2 extra round trips, as TCP + TLS
would), and for a 20 ms link whose server ends each status stream with ``Connection: close`` (the
protocol allows it; the stream's connection cannot be reused — "20 ms, stream closes"),
every client runs one warm-up job, then ``--runs`` runs of ``--jobs`` jobs, one job at a
time, the clients taking turns job by job (in rotating order). A job runs ``--steps`` steps of
``--seconds-per-step`` plus a random 0..``--jitter`` s, so completions fall at random phases of
fal-client's 0.1 s polling.

- *c→r*: from the server marking the job COMPLETED to the client holding the result (the
  server's ``completed_at`` and the client's ``time.monotonic()``: one system-wide clock);
- *overhead*: the job's wall time in the client minus its run time on the server;
- *req/job*, *conn/job*: calls and newly accepted TCP connections, from the server's counters
  (warm clients: the warm-up job is not counted).

Per run the p50 and p95 over its jobs; the table shows the median over runs and the range.

Run: .venv/bin/python benchmarks/bench_network.py [--runs 3] [--jobs 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter
from typing import Any

from _harness import (
    SHORT,
    ContenderClient,
    ServerProcess,
    Spread,
    client_names,
    header,
    make_client,
    percentile,
    write_json,
)

LINKS = {
    "loopback": (0.0, 0.0, False),
    "20 ms": (0.02, 2.0, False),
    "20 ms, stream closes": (0.02, 2.0, True),
    "100 ms": (0.1, 2.0, False),
}
"""Round trip (s), extra round trips for a new connection, streams end with Connection: close."""


async def one_job(
    client: ContenderClient, server: ServerProcess, seed: int, steps: int
) -> dict[str, Any]:
    before = server.stats()
    start = time.monotonic()
    handle = await client.submit(seed, steps)
    request_id = await client.wait(handle)
    done = time.monotonic()
    after = server.stats()
    _submitted, started, completed = server.jobs([request_id])[request_id] or [None] * 3
    assert started is not None
    assert completed is not None
    routes = Counter(after["routes"])
    routes.subtract(before["routes"])
    return {
        "c2r": done - completed,
        "overhead": (done - start) - (completed - started),
        "requests": sum(routes.values()),
        "routes": {k: v for k, v in routes.items() if v},
        "connections": after["opened"] - before["opened"],
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    names = [*client_names(), "floor split"]  # a floor whose result never follows a stream
    links = {name: LINKS[name] for name in args.links}
    servers = {
        name: ServerProcess(
            workers=4, seconds_per_step=args.seconds_per_step, run_jitter=args.jitter
        )
        for name in names
    }
    clients = {name: make_client(name, servers[name]) for name in names}
    samples: dict[str, dict[str, list[list[dict[str, Any]]]]] = {}
    seed = 0
    try:
        for link_name, (rtt, connect_rtts, stream_close) in links.items():
            for server in servers.values():
                server.set_link(rtt, connect_rtts, stream_close)
            for name in names:  # warm-up: connections over this link, imports
                await one_job(clients[name], servers[name], seed, args.steps)
                seed += 1
            per_client = samples.setdefault(link_name, {name: [] for name in names})
            for _run in range(args.runs):
                for name in names:
                    per_client[name].append([])
                for index in range(args.jobs):
                    shift = (index + _run) % len(names)
                    for name in names[shift:] + names[:shift]:
                        sample = await one_job(clients[name], servers[name], seed, args.steps)
                        per_client[name][-1].append(sample)
                        seed += 1
    finally:
        for client in clients.values():
            await client.aclose()
        for server in servers.values():
            server.close()
    return summarize(samples)


def summarize(samples: dict[str, dict[str, list[list[dict[str, Any]]]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for link_name, per_client in samples.items():
        rows: dict[str, Any] = {}
        for name, runs in per_client.items():
            figures = {key: Spread() for key in ("c2r_p50", "c2r_p95", "overhead", "req", "conn")}
            routes: Counter[str] = Counter()
            for jobs in runs:
                c2r = [job["c2r"] for job in jobs]
                figures["c2r_p50"].values.append(percentile(c2r, 50))
                figures["c2r_p95"].values.append(percentile(c2r, 95))
                figures["overhead"].values.append(statistics.median(j["overhead"] for j in jobs))
                figures["req"].values.append(statistics.mean(j["requests"] for j in jobs))
                figures["conn"].values.append(statistics.mean(j["connections"] for j in jobs))
                for job in jobs:
                    routes.update(job["routes"])
            count = sum(len(jobs) for jobs in runs)
            rows[name] = {
                **{key: spread.values for key, spread in figures.items()},
                "median": {key: spread.median for key, spread in figures.items()},
                "text": {
                    "c2r_p50": figures["c2r_p50"].text(1000),
                    "c2r_p95": figures["c2r_p95"].text(1000),
                    "overhead": figures["overhead"].text(1000),
                    "req": figures["req"].text(digits=2),
                    "conn": figures["conn"].text(digits=2),
                },
                "routes": {k: round(v / count, 2) for k, v in sorted(routes.items())},
                "jobs": count,
            }
        out[link_name] = rows
    return out


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    print(header())
    print(
        f"{args.runs} runs x {args.jobs} jobs per client and link, one job at a time, clients "
        f"interleaved; job = {args.steps} steps x {args.seconds_per_step:g} s + U(0, "
        f"{args.jitter:g}) s; links: new connection +2 round trips"
    )
    print("figures: median over runs (min-max); c->r and overhead in ms")
    for link_name, rows in result.items():
        print()
        print(f"link: {link_name}")
        head = (
            f"{'client':<11} {'c->r p50':>20} {'c->r p95':>20} {'overhead p50':>20} "
            f"{'req/job':>17} {'conn/job':>17}  calls by route per job"
        )
        print(head)
        print("-" * len(head))
        for name, row in rows.items():
            text = row["text"]
            routes = ", ".join(f"{k} {v:g}" for k, v in row["routes"].items())
            print(
                f"{name:<11} {text['c2r_p50']:>20} {text['c2r_p95']:>20} {text['overhead']:>20} "
                f"{text['req']:>17} {text['conn']:>17}  {routes}"
            )
        ours = rows["fluxwidget"]["median"]["c2r_p50"]
        for other in ("floor", "floor split", "fal-client"):
            if other in rows:
                ratio = ours / rows[other]["median"]["c2r_p50"]
                print(f"c->r p50, fluxwidget / {other}: {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1 if SHORT else 3)
    parser.add_argument("--jobs", type=int, default=2 if SHORT else 12, help="jobs per run")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--seconds-per-step", type=float, default=0.05)
    parser.add_argument("--jitter", type=float, default=0.2, help="random extra run time, s")
    parser.add_argument(
        "--links",
        nargs="+",
        choices=list(LINKS),
        default=["loopback", "20 ms", "20 ms, stream closes"] if SHORT else list(LINKS),
    )
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    report(result, args)
    write_json(args.json, {"args": vars(args), "links": result})


if __name__ == "__main__":
    main()
