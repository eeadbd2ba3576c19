"""Exports of a finished (or stopped) sweep into its run folder: grid image(s) and HTML report."""

from __future__ import annotations

from pathlib import Path

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


def export_run(runner: SweepRunner) -> list[Path]:
    """Write ``grid.jpg`` (one per Z value) and ``report.html`` into the run folder (blocking:
    call it in a thread from a loop); returns the paths written."""
    layout = GridLayout.from_plan(runner.plan, title=str(runner.plan.base.prompt))
    summary = [runner.progress().describe(), runner.estimate.describe()]
    billed = runner.billed_units()
    if billed is not None:
        summary.append(f"billed units reported by the server: {billed:g}")
    return write_exports(runner.run.path, export_cells(runner), layout, summary=summary)
