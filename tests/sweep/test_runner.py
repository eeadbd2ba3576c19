"""The sweep runner against a real emulator on loopback: cells, files, cap, resume, stops."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fluxwidget import sweep
from fluxwidget.emulator import Emulator
from fluxwidget.images import read_metadata
from fluxwidget.schema import InputError
from fluxwidget.store.runs import MANIFEST, Run
from fluxwidget.sweeps import (
    CostNotConfirmed,
    SweepFolderMismatch,
    SweepRunner,
    UnitPrice,
    plan_sweep,
)
from tests.clients import client_for

LORA = "https://example.org/style.safetensors"
BASE = {"prompt": "a fox", "image_size": "square", "loras": [{"path": LORA, "scale": 1.0}]}


@pytest.fixture
def wide_emu() -> Iterator[Emulator]:
    """Eight workers, so the client's cap (not the server) limits what runs at once."""
    with Emulator(workers=8, seconds_per_step=0.004, keepalive_interval=0.2) as emulator:
        yield emulator


def _max_in_flight(emu: Emulator) -> int:
    """Submitted and not yet collected, from the emulator's own call log."""
    current = peak = 0
    for method, path, status in emu.calls:
        if method == "POST" and path.rstrip("/").endswith("flux-lora") and status == 200:
            current += 1
            peak = max(peak, current)
        elif method == "GET" and "/requests/" in path and "/status" not in path and status == 200:
            current -= 1
    return peak


def _plan_3x3() -> object:
    return plan_sweep(BASE, "loras[0].scale=0.4-1.2 [3]", "guidance_scale=2,3.5,5", seed=11)


async def test_a_3x3_sweep_puts_each_image_in_its_cell(wide_emu: Emulator, tmp_path: Path) -> None:
    plan = plan_sweep(BASE, "loras[0].scale=0.4-1.2 [3]", "guidance_scale=2,3.5,5", seed=11)
    async with client_for(wide_emu) as client:
        runner = SweepRunner(client, plan, out=tmp_path / "fox", concurrency=3)
        await runner.run_all()
    assert runner.progress().done == 9
    assert wide_emu.submit_count == 9
    assert runner.max_in_flight <= 3
    assert _max_in_flight(wide_emu) <= 3  # measured at the server
    manifest = json.loads((tmp_path / "fox" / MANIFEST).read_text())
    rows = {row["job_id"]: row for row in manifest["jobs"]}
    for cell in plan.cells:
        record = runner.records[cell.id]
        assert rows[cell.id]["state"] == "done"
        (image,) = record.images
        embedded = read_metadata(tmp_path / "fox" / image.file)
        assert embedded is not None
        assert embedded["job_id"] == cell.id
        assert embedded["input"]["loras"][0]["scale"] == pytest.approx(
            cell.axis_values["loras[0].scale"]
        )
        assert embedded["input"]["guidance_scale"] == cell.axis_values["guidance_scale"]
        assert embedded["seed"] == 11  # one fixed seed for every cell
        assert [i["file"] for i in rows[cell.id]["images"]] == [image.file]
    scales = sorted({cell.axis_values["loras[0].scale"] for cell in plan.cells})
    assert scales == pytest.approx([0.4, 0.8, 1.2])


async def test_an_invalid_cell_stops_the_sweep_before_anything_is_sent(
    wide_emu: Emulator, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match=r"guidance_scale=40") as caught:
        sweep(
            BASE,
            "guidance_scale=2,40",
            "num_inference_steps=2",
            client=client_for(wide_emu),
            out=tmp_path / "x",
        )
    assert "from 0 to 35" in str(caught.value)
    assert wide_emu.submit_count == 0
    assert not (tmp_path / "x").exists()


async def test_the_same_sweep_on_the_same_folder_resumes_without_paying_twice(
    wide_emu: Emulator, tmp_path: Path
) -> None:
    folder = tmp_path / "fox"
    plan = _plan_3x3()
    async with client_for(wide_emu) as client:
        first = SweepRunner(client, plan, out=folder, concurrency=2)  # type: ignore[arg-type]
        first.subscribe(on_cell=lambda record, _u: first.stop() if record.state == "done" else None)
        await first.run_all()
        done_before = first.progress().done
        assert 1 <= done_before < 9
        resumed = SweepRunner(client, plan, out=folder, concurrency=4)  # type: ignore[arg-type]
        assert resumed.progress().done == done_before
        await resumed.run_all()
    assert resumed.progress().done == 9
    assert wide_emu.submit_count == 9  # no cell was submitted twice
    assert len([p for p in folder.iterdir() if p.suffix == ".jpg"]) == 9


async def test_a_changed_definition_on_an_existing_folder_is_refused(
    wide_emu: Emulator, tmp_path: Path
) -> None:
    folder = tmp_path / "fox"
    async with client_for(wide_emu) as client:
        await SweepRunner(
            client, plan_sweep(BASE, "guidance_scale=2,3", seed=1), out=folder
        ).run_all()
        other = plan_sweep(BASE, "guidance_scale=2,4", seed=1)
        with pytest.raises(SweepFolderMismatch, match="force_new"):
            SweepRunner(client, other, out=folder)
        fresh = SweepRunner(client, other, out=folder, force_new=True)
    assert fresh.run.path != folder
    assert fresh.run.path.parent == folder.parent


async def test_a_locked_account_stops_further_submits_and_collects_the_rest(
    wide_emu: Emulator, tmp_path: Path
) -> None:
    plan = plan_sweep(BASE, "guidance_scale=1-8", seed=3)  # 8 cells
    async with client_for(wide_emu) as client:
        runner = SweepRunner(client, plan, out=tmp_path / "s", concurrency=2)
        wide_emu.inject("submit", status=403, times=100)
        await runner.run_all()
    progress = runner.progress()
    assert runner.stopped is not None
    assert "refused the account or key" in runner.stopped
    assert wide_emu.submit_count == 0
    assert progress.done == 0
    assert progress.failed <= 2  # only the cells already on their way
    assert progress.cancelled == 8 - progress.failed


async def test_sweep_in_a_cell_returns_rows_and_the_billed_units(
    wide_emu: Emulator, tmp_path: Path
) -> None:
    run = await sweep(
        "a fox",
        "guidance_scale=2,5",
        "num_inference_steps=2,4",
        image_size="square",
        seed=5,
        client=client_for(wide_emu),
        out=tmp_path / "cell",
        export=False,
    )
    rows = run.to_records()
    assert [(row["x"], row["y"]) for row in rows] == [(0, 0), (1, 0), (0, 1), (1, 1)]
    assert all(row["state"] == "done" and row["seed"] == 5 for row in rows)
    assert rows[1]["axis:guidance_scale"] == 5
    assert run.runner.billed_units() == 4.0
    assert "billed 4 units" in run.status


async def test_an_expensive_sweep_waits_for_confirmation(
    wide_emu: Emulator, tmp_path: Path
) -> None:
    run = sweep(
        "a fox",
        "guidance_scale=1-20",
        client=client_for(wide_emu),
        out=tmp_path / "big",
        price=UnitPrice(0.5, "megapixel", "test price"),
    )
    with pytest.raises(CostNotConfirmed, match="above"):
        await run
    assert wide_emu.submit_count == 0
    assert "Confirm" in run.status
    assert Run.open(tmp_path / "big").active() == []


async def test_a_cell_whose_submit_was_in_flight_is_left_alone_unless_asked(
    wide_emu: Emulator, tmp_path: Path
) -> None:
    folder = tmp_path / "s"
    plan = plan_sweep(BASE, "guidance_scale=2,3", seed=4)
    async with client_for(wide_emu) as client:
        first = SweepRunner(client, plan, out=folder)
        # the process died while the first cell's submit was on the wire
        first.run.journal.append("submitting", "", job_id=plan.cells[0].id)
        first.run.release()  # (a dead process holds no lock)
        again = SweepRunner(client, plan, out=folder)
        assert again.records[plan.cells[0].id].state == "unknown"
        await again.run_all()
        assert wide_emu.submit_count == 1  # only the other cell
        assert again.progress().unknown == 1
        asked = SweepRunner(client, plan, out=folder, resubmit_unknown=True)
        await asked.run_all()
    assert asked.progress().done == 2
    assert wide_emu.submit_count == 2


@pytest.mark.parametrize("step_logs", [True, False])
async def test_step_logs_decide_whether_running_cells_report_their_steps(
    wide_emu: Emulator, tmp_path: Path, step_logs: bool
) -> None:
    from fluxwidget.client.status import InProgress

    plan = plan_sweep({**BASE, "num_inference_steps": 12}, "seed=1,2")
    running: list[InProgress] = []

    def heard(_record: object, update: object) -> None:
        if isinstance(update, InProgress):
            running.append(update)

    async with client_for(wide_emu) as client:
        runner = SweepRunner(client, plan, out=tmp_path / "s", step_logs=step_logs)
        runner.subscribe(on_cell=heard)
        await runner.run_all()
    assert runner.progress().done == 2
    assert running, "no cell was heard running"
    with_steps = [update for update in running if update.logs]
    if step_logs:
        assert with_steps  # "running 5/12" in the grid
        assert len(running) > 2
    else:
        assert with_steps == []
        # an event per cell's change of state (a reconnect may repeat one), not one per step
        assert len(running) <= 2 * len(plan.cells) < 12
