"""Exports of a finished (or stopped) sweep into its run folder: grid image(s) and HTML report,
with the ranking and per-axis win rates when the run's images were rated or voted on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..errors import RunFolderError
from ..store.runs import Run
from .axes import SweepPlan
from .cost import estimate_cost
from .export import ExportCell, GridLayout, ReportSection, write_exports
from .ranges import format_value
from .results import RunResults, load_run
from .runner import SweepRunner

__all__ = ["export_cells", "export_folder", "export_run", "winner_sections"]


def export_cells(runner: SweepRunner) -> list[ExportCell]:
    """One export row per cell, from the runner's records (the first image of each cell)."""
    return _cells(runner.plan, runner.run)


def _cells(plan: SweepPlan, run: Run) -> list[ExportCell]:
    cells = []
    for cell in plan.cells:
        record = run.jobs.get(cell.id)
        if record is None:
            cells.append(ExportCell.from_cell(cell, state="missing"))
            continue
        image = run.path / record.images[0].file if record.images else None
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


def winner_sections(results: RunResults) -> list[ReportSection]:
    """The report's "Pick the winner" sections: the ranking and the per-axis win rates, when
    anything was rated or voted on (else none)."""
    if not results.ratings and not results.votes:
        return []
    rows = []
    for entry in results.ranking():
        image = results[entry.key]
        rating = image.rating.describe() if image.rating is not None else ""
        rows.append(
            (
                entry.rank,
                image.key,
                ", ".join(f"{k}={format_value(v)}" for k, v in image.axes.items()),
                rating,
                f"{entry.wins:g}–{entry.losses:g}–{entry.ties}",
                f"{entry.strength:.2f}",
            )
        )
    votes = len(results.votes)
    rated = len(results.ratings)
    ranking = ReportSection(
        "Ranking",
        [
            f"{rated} images rated, {votes} blind votes; Bradley–Terry strengths (1 = average) "
            "from the votes and the ratings"
        ],
        ("rank", "image", "axis values", "rating", "won–lost–tied", "strength"),
        rows,
        "ranking",
    )
    lines = results.describe_win_rates() or ["no swept axis"]
    return [ranking, ReportSection("Win rates per axis (blind votes)", lines, css_class="wins")]


def export_run(runner: SweepRunner) -> list[Path]:
    """Write ``grid.jpg`` (one per Z value) and ``report.html`` into the run folder (blocking:
    call it in a thread from a loop); returns the paths written."""
    layout = GridLayout.from_plan(runner.plan, title=str(runner.plan.base.prompt))
    summary = run_totals(runner)
    billed = runner.billed_units()
    if billed is not None:
        summary.append(f"billed units reported by the server: {billed:g}")
    sections = winner_sections(load_run(runner.run))
    return write_exports(
        runner.run.path, export_cells(runner), layout, summary=summary, sections=sections
    )


def export_folder(path: str | Path) -> list[Path]:
    """Write the grid image(s) and ``report.html`` of a sweep's run folder again, from what the
    folder holds (with the ranking and win rates); returns the paths written. The caller holds
    the folder's write lock."""
    run = Run.open(path)
    stored = run.definition or {}
    if run.kind != "sweep" or not isinstance(stored.get("sweep"), dict):
        raise RunFolderError(f"{run.path} is not a sweep's run folder (it is a {run.kind} run)")
    plan = SweepPlan.from_json(stored["sweep"])
    layout = GridLayout.from_plan(plan, title=str(plan.base.prompt))
    states = [record.state for record in run.records()]
    summary = [f"{states.count('done')}/{len(plan.cells)} done"]
    results = load_run(run)
    return write_exports(
        run.path, _cells(plan, run), layout, summary=summary, sections=winner_sections(results)
    )
