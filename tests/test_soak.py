"""Soak: 500 jobs at concurrency 16 over a real socket, with about 5 % of the calls faulted.

Every job ends done or with a typed error, the server sees exactly one submit per job, no task,
thread or socket is left behind, and memory stays flat between the first 100 jobs and the rest.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

from fluxwidget.client import FluxClient, RetryPolicy
from fluxwidget.emulator import Emulator
from fluxwidget.errors import FluxwidgetError

JOBS = 500
CONCURRENCY = 16
FAULT_CHANCE = 0.2  # one fault per faulted job, about four calls per job: ~5 % of the calls
FAULTS: list[dict[str, Any]] = [
    {"route": "submit", "status": 429, "retry_after": 0.01},
    {"route": "submit", "status": 503},
    {"route": "submit", "after_accept": True, "drop": True},
    {"route": "status", "status": 503},
    {"route": "stream", "drop": True},
    {"route": "stream", "status": 500},
    {"route": "result", "status": 502},
    {"route": "result", "drop": True},
    {"route": "result", "truncate": 20},
    {"route": "file", "drop": True},
    {"route": "file", "status": 503},
    {"route": "file", "status": 404},
]


async def connections_closed(emu: Emulator, within: float = 10.0) -> bool:
    """Whether every connection the emulator accepted is closed again (the server sees a
    client's close a moment after it is made)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if emu.connections.open == 0:
            return True
        await asyncio.sleep(0.05)  # the server's counter has no event to wait on
    return False


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_soak_500_jobs_with_random_faults() -> None:
    rng = random.Random(20261125)
    retry = RetryPolicy(max_attempts=4, initial_wait=0.005, max_wait=0.05)
    threads_before = threading.enumerate()
    with Emulator(workers=CONCURRENCY, seconds_per_step=0.0005, keepalive_interval=0.5) as emu:
        tasks_before = asyncio.all_tasks()
        client = FluxClient(
            emu.api_key,
            base_url=emu.url,
            retry=retry,
            journal=False,
            max_concurrency=CONCURRENCY,
            poll_interval=0.01,
            max_poll_interval=0.05,
        )
        gate = asyncio.Semaphore(CONCURRENCY)
        outcomes: list[object] = []
        rss: dict[str, int] = {}

        async def job(number: int) -> None:
            async with gate:
                if rng.random() < FAULT_CHANCE:
                    emu.inject(**rng.choice(FAULTS))
                try:
                    result = await client.generate(
                        f"soak {number}",
                        image_size={"width": 64, "height": 48},
                        num_inference_steps=2,
                        seed=number,
                        timeout=30,
                    )
                    images = [await client.download(image) for image in result.images]
                    outcomes.append(images)
                except FluxwidgetError as exc:
                    outcomes.append(exc)
                if len(outcomes) == 100:
                    rss["warm"] = rss_bytes()

        started = time.monotonic()
        await asyncio.gather(*(job(n) for n in range(JOBS)))
        elapsed = time.monotonic() - started
        rss["end"] = rss_bytes()
        await client.aclose()
        emu.clear_faults()
        assert await connections_closed(emu)  # the client left no connection open

        done = [o for o in outcomes if isinstance(o, list)]
        failed = [o for o in outcomes if isinstance(o, FluxwidgetError)]
        assert len(done) + len(failed) == JOBS
        assert all(images and images[0][:2] == b"\xff\xd8" for images in done)
        assert len(done) >= JOBS * 0.8, {type(e).__name__ for e in failed}
        assert emu.submit_count == JOBS  # never a second submit, never a lost one
        assert asyncio.all_tasks() == tasks_before
        assert rss["end"] - rss["warm"] < 64 * 2**20, rss
    # the client was closed above; with the emulator (and its renderer threads) gone too,
    # nothing of the run may remain
    await asyncio.get_running_loop().shutdown_default_executor()
    assert threading.enumerate() == threads_before
    print(f"soak: {JOBS} jobs in {elapsed:.1f} s, {len(failed)} typed errors")
