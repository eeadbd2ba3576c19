"""``fluxwidget sweep``: an X/Y/Z sweep from the shell, with a progress bar; re-running resumes.

    fluxwidget sweep "a fox" --axis guidance_scale=2,3.5,5 \\
        --axis "loras[0].scale=0.4-1.2 [3]" --lora owner/lora:1.0 --out runs/fox
    fluxwidget sweep "as a watercolour" --axis image_url=me.jpg,dog.png --axis strength=0.5,0.8
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
from pathlib import Path
from typing import Any

from ..client.pricing import fetch_unit_price
from ..client.status import StatusUpdate
from ..errors import MissingKeyError
from ..store.records import JobRecord
from ..store.runs import Run
from ..sweeps.axes import plan_sweep
from ..sweeps.cost import CONFIRM_ABOVE_USD, DEFAULT_PRICE, estimate_cost
from ..sweeps.run import SweepRun, prepare_sweep
from ..sweeps.runner import DEFAULT_CONCURRENCY, SweepRunner
from .connection import add_connection_args, client_for
from .options import add_input_args, input_fields
from .uploadbar import UploadBars

__all__ = ["add_sweep_command", "run_sweep_command"]

_AXIS_HELP = (
    "FIELD=VALUES, up to three times (X, then Y, then Z: one grid per Z value). FIELD is any "
    "input field (guidance_scale, num_inference_steps, seed, image_size, strength, ...), "
    "image_url (photos: image_url=a.png,b.png — each local file is uploaded once), "
    "loras[i].scale, loras[i].path (local .safetensors files too), or prompt_sr (Prompt S/R: "
    "the first value is replaced in the prompt by each value). VALUES: 2,3.5,5 | 1-5 | "
    "1-5 (+2) | 0.4-1.2 [3] (three evenly spaced values)."
)


def add_sweep_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``sweep`` to the CLI's sub-commands."""
    cmd = commands.add_parser(
        "sweep",
        help="sweep up to three parameters into a labelled grid (re-run to resume)",
        description="Sweep up to three parameters; every image is saved as it arrives. Running "
        "the same command on the same --out resumes: done cells are skipped, submitted cells "
        "are collected by request id, nothing is paid twice.",
    )
    add_input_args(cmd)
    cmd.add_argument("--axis", action="append", default=[], metavar="FIELD=VALUES", help=_AXIS_HELP)
    cmd.add_argument("--mode", choices=["grid", "zip"], default="grid", help="cross or pair axes")
    cmd.add_argument(
        "--seed-mode", choices=["fixed", "per_cell", "per_row"], default="fixed",
        help="one seed for every cell (drawn once unless --seed), one per cell, or one per row",
    )  # fmt: skip
    cmd.add_argument(
        "--concurrency", type=int, default=DEFAULT_CONCURRENCY,
        help="cells submitted and unfinished at once",
    )  # fmt: skip
    cmd.add_argument("--out", type=Path, help="run folder (re-running on it resumes)")
    cmd.add_argument("--dry-run", action="store_true", help="print the cells and the cost only")
    cmd.add_argument("--yes", action="store_true", help="run without asking, whatever the cost")
    cmd.add_argument(
        "--confirm-above", type=float, default=CONFIRM_ABOVE_USD,
        help="ask before running when the estimate is above this many dollars",
    )  # fmt: skip
    cmd.add_argument(
        "--force-new", action="store_true",
        help="when --out holds a different sweep, start a new run folder beside it",
    )  # fmt: skip
    cmd.add_argument("--cell-timeout", type=float, help="give up on a cell after N seconds")
    cmd.add_argument(
        "--resubmit-unknown", action="store_true",
        help="send again cells whose submit reply was lost and that fal's request listing "
        "shows were never accepted (found ones are collected anyway; without the listing they "
        "are left alone)",
    )  # fmt: skip
    cmd.add_argument(
        "--quiet", action="store_true", help="no progress bar and no upload progress bars"
    )
    add_connection_args(cmd)


class _Bar:
    """A tqdm progress bar of finished cells, with what is in flight as its postfix."""

    def __init__(self, runner: SweepRunner, enabled: bool) -> None:
        from tqdm import tqdm

        self.runner = runner
        self.bar = tqdm(
            total=len(runner.records),
            initial=runner.progress().finished,
            unit="cell",
            file=sys.stderr,
            disable=not enabled,
            dynamic_ncols=True,
        )
        self._shown: tuple[int, int, int, str | None] | None = None

    def __call__(self, record: JobRecord, update: StatusUpdate | None) -> None:
        progress = self.runner.progress()
        paused = self.runner.paused  # a storm of refused submits: say why nothing is sent
        counts = (progress.finished, progress.in_flight, progress.failed, paused)
        if counts == self._shown:  # a step of a running cell: nothing the bar shows changed
            return
        self._shown = counts
        self.bar.n = progress.finished
        text = f"{progress.in_flight} in flight, {progress.failed} failed"
        self.bar.set_postfix_str(f"{text} · {paused}" if paused else text, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def _print_cells(plan: Any) -> None:
    nx, ny, nz = plan.shape
    print(f"{len(plan.cells)} cells ({nx} × {ny} × {nz}), mode {plan.mode}, seeds {plan.seed_mode}")
    for cell in plan.cells:
        print(f"  {cell.id}  {cell.title or '(base)'}  seed {cell.seed}")


def _forget(run: SweepRun, new_folder: bool) -> None:
    """A sweep refused before anything was sent leaves no folder behind (when it made it)."""
    folder = run.runner.run.path
    run.runner.run.release()
    if new_folder:
        shutil.rmtree(folder, ignore_errors=True)
        print(f"fluxwidget: nothing was sent; {folder} was not kept", file=sys.stderr)


async def run_sweep_command(args: argparse.Namespace) -> int:
    """Plan (validated before anything is sent), price, confirm, run, export."""
    if len(args.axis) > 3:
        raise ValueError("--axis: at most three axes (X, Y, Z)")
    axes = [*args.axis, None, None, None][:3]
    plan = plan_sweep(
        input_fields(args), axes[0], axes[1], axes[2], mode=args.mode, seed_mode=args.seed_mode
    )
    if args.dry_run:  # nothing is sent: fal's price when a key is set, else the default
        price = DEFAULT_PRICE
        with contextlib.suppress(MissingKeyError):
            async with client_for(args) as client:
                price = await fetch_unit_price(client) or DEFAULT_PRICE
        _print_cells(plan)
        print(estimate_cost([cell.input for cell in plan.cells], price).describe())
        return 0
    new_folder = args.out is None or not Run.is_run_folder(args.out)
    bars = UploadBars(enabled=not args.quiet)
    async with client_for(args) as client:
        client.upload_progress = bars
        run = prepare_sweep(
            client,
            plan,
            run_class=SweepRun,
            out=args.out,
            concurrency=args.concurrency,
            confirm=args.yes,
            confirm_above=args.confirm_above,
            force_new=args.force_new,
            cell_timeout=args.cell_timeout,
            resubmit_unknown=args.resubmit_unknown,
            step_logs=False,  # the bar counts cells, not steps
        )
        runner = run.runner
        resumed = runner.progress().finished + sum(r.collectable for r in runner.records.values())
        print(f"run folder: {runner.run.path}", file=sys.stderr)
        if resumed:
            print(
                f"resuming: {resumed} of {len(plan.cells)} cells already started", file=sys.stderr
            )
        confirmed = await run.price()
        print(runner.estimate.describe(), file=sys.stderr)
        if not confirmed:
            answer = ""
            if not sys.stdin.isatty():
                print(
                    f"fluxwidget: the estimate is above ${args.confirm_above:g}: "
                    "pass --yes to run it",
                    file=sys.stderr,
                )
            else:
                answer = await asyncio.to_thread(input, "Run it? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                _forget(run, new_folder)
                return 2
        bar = _Bar(runner, enabled=not args.quiet)
        runner.subscribe(on_cell=bar)
        try:
            await run.confirm().wait()
        except asyncio.CancelledError:
            bar.close()
            bars.close()
            runner.stop()
            await runner.run.flush()
            print(
                f"\nfluxwidget: interrupted — cells in flight were cancelled; run the same "
                f"command again to resume ({runner.run.path})",
                file=sys.stderr,
            )
            raise
        bar.close()
        bars.close()
    progress = runner.progress()
    if runner.stopped:
        print(f"fluxwidget: {runner.stopped}", file=sys.stderr)
    print(progress.describe(), file=sys.stderr)
    for path in run.exported:
        print(path)
    failed = [r for r in runner.records.values() if r.state in ("error", "unknown")]
    for record in failed:
        print(f"fluxwidget: {record.job_id} {record.axes}: {record.error}", file=sys.stderr)
    return 0 if progress.done == progress.total else 1
