"""Storms of refused submits (402, 429, 5xx) against a real emulator: one shared pause, a stop
with a clear message, the cells not sent left for the next run — counted at the emulator."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fluxwidget import PaymentRequiredError
from fluxwidget.client import RetryPolicy
from fluxwidget.client.responses import error_from_response
from fluxwidget.emulator import Emulator
from fluxwidget.errors import ForbiddenError
from fluxwidget.store.runs import MANIFEST, Run
from fluxwidget.sweeps import StormPolicy, SweepRunner, plan_sweep
from tests.clients import client_for

LORA = "https://example.org/style.safetensors"
BASE = {"prompt": "a fox", "image_size": "square", "loras": [{"path": LORA, "scale": 1.0}]}
ONE_RETRY = RetryPolicy(max_attempts=2, initial_wait=0.01, max_wait=0.2)
"""The client tries a submit twice (honouring Retry-After) before the runner sees the 429."""


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(workers=8, seconds_per_step=0.004, keepalive_interval=0.2) as emulator:
        yield emulator


def _submits(emu: Emulator, status: int | None = None) -> int:
    """Submit calls the emulator answered (with `status`, when given)."""
    return sum(
        1
        for method, path, code in emu.calls
        if method == "POST"
        and path.rstrip("/").endswith("flux-lora")
        and (status is None or code == status)
    )


def _plan(cells: int = 8) -> object:
    return plan_sweep(BASE, f"guidance_scale=1-{cells}", seed=3)


def test_402_maps_to_payment_required_with_fals_detail() -> None:
    reply = httpx.Response(402, json={"detail": "Exhausted balance. Top up at fal.ai/billing"})
    error = error_from_response(reply)
    assert isinstance(error, PaymentRequiredError)
    assert isinstance(error, ForbiddenError)  # `except ForbiddenError` still catches it
    assert error.status_code == 402
    assert "Exhausted balance" in str(error)
    assert error.detail == "Exhausted balance. Top up at fal.ai/billing"


async def test_a_402_stops_the_sweep_and_the_rest_resumes_on_the_next_run(
    emu: Emulator, tmp_path: Path
) -> None:
    folder = tmp_path / "s"
    async with client_for(emu) as client:
        runner = SweepRunner(client, _plan(), out=folder, concurrency=2)
        emu.inject("submit", status=402, times=100)
        await runner.run_all()
        progress = runner.progress()
        assert runner.stopped is not None
        assert "402" in runner.stopped
        assert "pay" in runner.stopped
        assert _submits(emu) <= 2  # one attempt per slot in flight at most
        assert emu.submit_count == 0
        assert progress.cancelled == 8
        assert progress.failed == 0
        assert {r.detail for r in runner.records.values()} == {"Not submitted"}

        emu.clear_faults()
        again = SweepRunner(client, _plan(), out=folder, concurrency=2)
        await again.run_all()
    assert again.progress().done == 8
    assert emu.submit_count == 8  # each cell paid once


async def test_a_429_storm_pauses_every_submit_once_then_goes_on(
    emu: Emulator, tmp_path: Path
) -> None:
    notices: list[str] = []
    async with client_for(emu, retry=ONE_RETRY) as client:
        runner = SweepRunner(client, _plan(6), out=tmp_path / "s", concurrency=2)
        runner.subscribe(on_cell=lambda _r, _u: notices.append(runner.notice or ""))
        # both first submits are refused twice (the client's own retry included)
        emu.inject("submit", status=429, retry_after=1, times=4)
        await runner.run_all()
    assert runner.stopped is None
    assert runner.progress().done == 6
    assert runner.pauses == 1  # one shared pause, not one per cell
    assert _submits(emu, 429) == 4
    assert emu.submit_count == 6  # the refused cells were sent once the storm ended
    assert any(n.startswith("Paused: rate limited by the server — resuming in") for n in notices)


async def test_after_a_pause_one_submit_goes_first(emu: Emulator, tmp_path: Path) -> None:
    async with client_for(emu, retry=ONE_RETRY) as client:
        runner = SweepRunner(client, _plan(), out=tmp_path / "s", concurrency=4)
        # the first four cells are refused twice each; then the first one sent after the pause
        emu.inject("submit", status=429, retry_after=0.5, times=4 * 2 + 2)
        await runner.run_all()
    assert runner.stopped is None
    assert runner.progress().done == 8
    # had every slot sent a cell after the first pause, the last two 429s would have gone to two
    # cells whose retries then succeed: one pause. One cell went alone, was refused: two pauses
    assert runner.pauses == 2
    assert _submits(emu) == 10 + 8


async def test_a_persisting_429_storm_stops_with_a_message(emu: Emulator, tmp_path: Path) -> None:
    storms = StormPolicy(max_rate_limit_pauses=2)
    async with client_for(emu, retry=ONE_RETRY) as client:
        runner = SweepRunner(client, _plan(), out=tmp_path / "s", concurrency=2, storms=storms)
        emu.inject("submit", status=429, retry_after=0.5, times=1000)
        await runner.run_all()
    assert runner.stopped is not None
    assert "kept rate limiting" in runner.stopped
    assert runner.pauses == 2
    assert emu.submit_count == 0
    assert runner.progress().cancelled == 8  # nothing failed: nothing was sent
    # the first wave: both slots' cells (2 attempts each); after each pause one cell only
    assert _submits(emu) <= (2 + 2) * 2


async def test_a_long_retry_after_stops_at_once(emu: Emulator, tmp_path: Path) -> None:
    started = time.monotonic()
    async with client_for(emu, retry=ONE_RETRY) as client:
        runner = SweepRunner(client, _plan(), out=tmp_path / "s", concurrency=2)
        emu.inject("submit", status=429, retry_after=300, times=100)
        await runner.run_all()
    assert time.monotonic() - started < 60  # no 300 s wait (a generous bound)
    assert runner.stopped is not None
    assert "300 s" in runner.stopped
    assert "rate limited" in runner.stopped
    assert _submits(emu) <= 2
    assert runner.pauses == 0
    assert runner.progress().cancelled == 8


async def test_a_5xx_storm_stops_after_the_configured_count(emu: Emulator, tmp_path: Path) -> None:
    storms = StormPolicy(max_server_errors=3, server_error_pause=0.1)
    async with client_for(emu) as client:
        runner = SweepRunner(client, _plan(), out=tmp_path / "s", concurrency=1, storms=storms)
        emu.inject("submit", status=500, times=100)
        await runner.run_all()
    assert runner.stopped is not None
    assert "3 times in a row" in runner.stopped
    assert _submits(emu, 500) == 3
    assert runner.pauses == 2  # a short pause after each of the first two
    progress = runner.progress()
    assert progress.failed == 3
    assert progress.cancelled == 5


async def test_5xx_replies_to_submits_sent_together_count_once(
    emu: Emulator, tmp_path: Path
) -> None:
    storms = StormPolicy(max_server_errors=3, server_error_pause=0.1)
    async with client_for(emu) as client:
        runner = SweepRunner(client, _plan(), out=tmp_path / "s", concurrency=4, storms=storms)
        emu.inject("submit", status=500, times=100)
        await runner.run_all()
    assert runner.stopped is not None
    assert "3 times in a row" in runner.stopped
    assert _submits(emu, 500) == 4 + 1 + 1  # the first four at once, then one after each pause
    assert runner.pauses == 2


async def test_a_5xx_burst_shorter_than_the_limit_pauses_and_goes_on(
    emu: Emulator, tmp_path: Path
) -> None:
    storms = StormPolicy(max_server_errors=3, server_error_pause=0.1)
    async with client_for(emu) as client:
        runner = SweepRunner(client, _plan(4), out=tmp_path / "s", concurrency=1, storms=storms)
        emu.inject("submit", status=500, times=2)
        await runner.run_all()
    assert runner.stopped is None
    progress = runner.progress()
    assert progress.failed == 2
    assert progress.done == 2


def test_storm_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="max_server_errors"):
        StormPolicy(max_server_errors=0)
    with pytest.raises(ValueError, match="must not be negative"):
        StormPolicy(max_rate_limit_wait=-1)


async def test_a_refused_cell_is_journaled_as_not_sent_so_a_crash_does_not_lose_it(
    emu: Emulator, tmp_path: Path
) -> None:
    folder = tmp_path / "s"
    async with client_for(emu, retry=ONE_RETRY) as client:
        runner = SweepRunner(client, _plan(), out=folder, concurrency=2)
        emu.inject("submit", status=429, retry_after=300, times=100)
        await runner.run_all()
    refused = [r.job_id for r in runner.records.values() if r.error_type is None]
    events = [json.loads(line) for line in (folder / "journal.jsonl").read_text().splitlines()]
    not_sent = {e["job_id"] for e in events if e.get("event") == "not_sent"}
    assert 1 <= len(not_sent) <= 2  # the cells whose submit was refused
    assert not_sent <= set(refused)
    # the journal alone (a manifest written before the refusal) makes them pending again
    manifest = json.loads((folder / MANIFEST).read_text())
    for row in manifest["jobs"]:
        row["state"] = "pending"
    (folder / MANIFEST).write_text(json.dumps(manifest))
    reopened = Run.open(folder)
    assert {reopened.jobs[job_id].state for job_id in not_sent} == {"pending"}
