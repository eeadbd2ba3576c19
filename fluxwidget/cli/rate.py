"""``fluxwidget rate DIR`` and ``fluxwidget report DIR``: a run's ranking and per-axis win rates
in the shell, and its report.html (and grid image) written again with them. No GUI."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from ..store.lock import RunLock
from ..sweeps.ranges import format_value
from ..sweeps.report import export_folder
from ..sweeps.results import load_run

__all__ = [
    "add_rate_command",
    "add_report_command",
    "run_rate_command",
    "run_report_command",
]


def add_rate_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``rate`` to the CLI's sub-commands."""
    rate = commands.add_parser(
        "rate",
        help="print a run's ranking and per-axis win rates",
        description="Print the ranking of a run folder's images (Bradley–Terry on the blind "
        "votes and the ratings stored in its ratings.jsonl) and each swept value's win rate.",
    )
    rate.add_argument("folder", type=Path, help="a run folder")
    rate.add_argument("--top", type=int, default=20, help="how many images to list (0: all)")


def add_report_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``report`` to the CLI's sub-commands."""
    report = commands.add_parser(
        "report",
        help="write a sweep's report.html and grid image again (with ranking and win rates)",
        description="Write report.html and grid.jpg of a sweep's run folder again from what the "
        "folder holds, with the ranking and win rates when its images were rated or voted on.",
    )
    report.add_argument("folder", type=Path, help="a sweep's run folder")


def _rate_text(folder: Path, top: int) -> str:
    results = load_run(folder)
    lines = [
        f"{results.path}: {len(results)} images, {len(results.ratings)} rated, "
        f"{len(results.votes)} blind votes"
    ]
    if not results.ratings and not results.votes:
        lines.append("nothing rated or voted on yet: rate in the sweep grid or run blind_ab()")
        return "\n".join(lines)
    lines.append("")
    lines.append("Ranking (Bradley–Terry strength, 1 = average):")
    ranking = results.ranking()
    for entry in ranking[: top or None]:
        image = results[entry.key]
        values = ", ".join(f"{k}={format_value(v)}" for k, v in image.axes.items())
        rating = image.rating.describe() if image.rating is not None else ""
        record = f"{entry.wins:g}-{entry.losses:g}-{entry.ties}"
        lines.append(
            f"{entry.rank:>3}. {image.key:<16} {entry.strength:6.2f}  {record:<8} "
            f"{values}  {rating}".rstrip()
        )
    if top and len(ranking) > top:
        lines.append(f"     … {len(ranking) - top} more (--top 0 lists all)")
    rates = results.describe_win_rates()
    if rates:
        lines.append("")
        lines.append("Win rates per axis (blind votes, 95 % interval):")
        lines.extend(f"  {line}" for line in rates)
    return "\n".join(lines)


async def run_rate_command(args: argparse.Namespace) -> int:
    """Print the ranking and win rates (reads only: no lock)."""
    print(await asyncio.to_thread(_rate_text, args.folder, args.top))
    return 0


def _report(folder: Path) -> list[Path]:
    if RunLock.held_here(folder) is not None:  # pragma: no cover - the CLI holds none
        return export_folder(folder)
    lock = RunLock(folder)
    lock.claim()  # RunFolderBusy while a sweep writes it
    try:
        return export_folder(folder)
    finally:
        lock.release()


async def run_report_command(args: argparse.Namespace) -> int:
    """Write the report and grid again, as the folder's writer."""
    for path in await asyncio.to_thread(_report, args.folder):
        print(path)
    return 0
