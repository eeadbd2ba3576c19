"""Exports of a finished (or stopped) sweep into its run folder: grid image(s) and HTML report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .cost import estimate_cost
from .export import ExportCell, GridLayout, write_exports
from .runner import SweepRunner

__all__ = ["export_cells", "export_run"]


def export_cells(runner: SweepRunner) -> list[ExportCell]:
    """One export row per cell, from the runner's records (the first image of each cell)."""
    cells = []
    for cell in runner.plan.cells:
        record = runner.records[cell.id]
        image = runner.run.path / record.images[0].file if record.images else None
        cells.append(
            ExportCell.from_cell(
                cell,
                state=record.state,
                image_path=image,
                seed=record.seed,
                request_id=record.request_id,
                error=record.error,
            )
        )
    return cells


def run_totals(runner: SweepRunner) -> list[str]:
    """The whole run's totals, however many times it was resumed: its cells by state, the time
    from its first submit to its last image, and the estimated cost of every cell."""
    progress = runner.progress()
    started = [
        r.timings["submitted_at"] for r in runner.records.values() if "submitted_at" in r.timings
    ]
    ended = [r.timings["done_at"] for r in runner.records.values() if "done_at" in r.timings]
    span = max(ended) - min(started) if started and ended else progress.elapsed
    counts = replace(progress, elapsed=max(0.0, span), eta=None).describe()
    everything = estimate_cost([cell.input for cell in runner.plan.cells], runner.estimate.price)
    return [
        counts.replace(" elapsed", " from the first submit to the last image"),
        "the whole sweep: " + everything.describe(),
    ]


def export_run(runner: SweepRunner) -> list[Path]:
    """Write ``grid.jpg`` (one per Z value) and ``report.html`` into the run folder (blocking:
    call it in a thread from a loop); returns the paths written."""
    layout = GridLayout.from_plan(runner.plan, title=str(runner.plan.base.prompt))
    summary = run_totals(runner)
    billed = runner.billed_units()
    if billed is not None:
        summary.append(f"billed units reported by the server: {billed:g}")
    return write_exports(runner.run.path, export_cells(runner), layout, summary=summary)
