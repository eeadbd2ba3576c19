"""``fluxwidget recover``: collect jobs that were submitted but whose images are not on disk."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..client.journal import Journal
from ..errors import FluxwidgetError, RunFolderError
from ..pipeline import JobPipeline
from ..store.lost import find_lost_submits
from ..store.records import JobRecord
from ..store.runs import Run, default_runs_root, list_runs
from .connection import add_connection_args, client_for

__all__ = ["add_recover_command", "run_recover_command"]


def add_recover_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``recover`` to the CLI's sub-commands."""
    rec = commands.add_parser(
        "recover",
        help="collect jobs that were submitted but never saved",
        description="Collect every job that was submitted but whose images are not on disk: in "
        "a run folder, in every run folder under a root, or from the client's journal. A job "
        "whose submit reply was lost (unknown) is looked for in fal's request listing by its "
        "exact input, and collected when found.",
    )
    rec.add_argument(
        "folder", nargs="?", type=Path,
        help=f"a run folder or a folder of runs (default {default_runs_root()})",
    )  # fmt: skip
    rec.add_argument(
        "--journal", type=Path,
        help="also collect the jobs of this client journal (FLUXWIDGET_JOURNAL) into a new run",
    )  # fmt: skip
    rec.add_argument(
        "--resubmit-unknown", action="store_true",
        help="send again the jobs whose submit reply was lost and that fal's request listing "
        "shows were never accepted (never when the listing is not available)",
    )  # fmt: skip
    add_connection_args(rec)


async def run_recover_command(args: argparse.Namespace) -> int:
    """Collect every job of the run folders (and of a client journal) whose images are not all
    on disk — judged from the files, not from a flag — by request id, on the server each run
    was sent to (unless --base-url says otherwise). Each folder is claimed first: a folder
    another process is writing is left alone, and said so."""
    fresh_root = args.journal is not None and args.folder is not None and not args.folder.exists()
    runs = [] if fresh_root else _runs_to_recover(args.folder)
    if args.journal is not None:
        runs.extend(_runs_from_journal(Journal(args.journal), args.folder))
    pending = [run for run in runs if any(r.collectable or _lost(r) for r in run.records())]
    if not pending:
        print("nothing to recover: every submitted job has its images on disk", file=sys.stderr)
        return 0
    failures = 0
    resubmit = bool(getattr(args, "resubmit_unknown", False))
    for read in pending:
        try:
            run = Run.open(read.path, claim=True)  # read again, now as its one writer
        except RunFolderError as exc:
            failures += 1
            print(f"fluxwidget: {exc}", file=sys.stderr)
            continue
        try:
            failures += await _collect(args, run, resubmit=resubmit)
        finally:
            await run.flush()
            run.release()
    return 1 if failures else 0


async def _collect(args: argparse.Namespace, run: Run, *, resubmit: bool) -> int:
    """Collect one claimed run's jobs (lost submits looked up in fal's request listing first)
    on the server the run used; returns how many failed or stay unknown."""
    failures = 0
    async with client_for(args, server=run.server) as client:
        pipeline = JobPipeline(client, run, step_logs=False)  # nothing shows steps here
        check = await find_lost_submits(client, run)
        for job_id, request_id in check.found.items():
            print(f"fluxwidget: {run.name}/{job_id}: found {request_id} in fal's request "
                  "listing; collecting it", file=sys.stderr)  # fmt: skip
        again = [run.jobs[job_id] for job_id in check.absent] if resubmit else []
        for record in run.active() + again:
            try:
                if record.request_id is None:
                    record.state = "pending"
                    await pipeline.run(record)
                else:
                    await pipeline.collect(record)
            except FluxwidgetError as exc:
                failures += 1
                print(f"fluxwidget: {run.name}/{record.job_id}: {exc}", file=sys.stderr)
            else:
                for image in record.images:
                    print(run.path / image.file)
        for record in run.records():
            if _lost(record):
                failures += 1
                print(f"fluxwidget: {run.name}/{record.job_id}: unknown — {record.error}",
                      file=sys.stderr)  # fmt: skip
    return failures


def _lost(record: JobRecord) -> bool:
    """A job whose submit reply was lost: no request id, maybe accepted."""
    return record.state == "unknown" and record.request_id is None


def _runs_to_recover(folder: Path | None) -> list[Run]:
    """The run folder `folder`, or every run folder under it (default: the runs root)."""
    base = folder if folder is not None else default_runs_root()
    if Run.is_run_folder(base):
        return [Run.open(base)]
    if folder is not None and not base.is_dir():
        raise RunFolderError(f"{folder} is not a run folder or a folder of runs")
    return list_runs(base)


def _runs_from_journal(journal: Journal, folder: Path | None) -> list[Run]:
    """A new run folder holding the journal's uncollected jobs (by request id)."""
    pending = journal.pending()
    if not pending:
        return []
    root = folder if folder is not None and not Run.is_run_folder(folder) else None
    run = Run.create(root, kind="recover", claim=True)
    first = pending[0]
    if isinstance(first.get("base_url"), str):  # the server the journal's jobs went to
        run.remember_server(first["base_url"], str(first.get("auth_scheme") or "Key"))
    for entry in pending:
        record = JobRecord(
            job_id=run.new_job_id("r"),
            input=entry.get("input") or {},
            endpoint=str(entry.get("endpoint") or ""),
            request_id=str(entry["request_id"]),
            state="queued",
        )
        run.add(record)
        run.journal.append("submitted", record.request_id or "", job_id=record.job_id)
    run.save()
    for entry in pending:  # the run folder now holds them (durably): the journal lets them go
        journal.append("moved", str(entry["request_id"]), run=str(run.path))
    run.release()
    return [run]
