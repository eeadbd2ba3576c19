"""``fluxwidget generate``: one job into a run folder, with a status line on stderr."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TextIO

from ..client.status import StatusUpdate
from ..errors import FluxwidgetError
from ..pipeline import JobPipeline
from ..schema import validate_input
from ..store.records import JobRecord
from ..store.runs import Run, default_runs_root
from .connection import add_connection_args, client_for
from .options import add_input_args, input_fields
from .uploadbar import UploadBars

__all__ = ["StatusLine", "add_generate_command", "run_generate_command"]


def add_generate_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``generate`` to the CLI's sub-commands."""
    gen = commands.add_parser(
        "generate",
        help="generate images into a run folder, each with its parameters embedded",
        description="Generate images; they are saved as they arrive, with their parameters.",
    )
    add_input_args(gen)
    gen.add_argument("--timeout", type=float, help="give up (and cancel) after N seconds")
    gen.add_argument(
        "--out", type=Path,
        help="run folder (created, or added to); default: a new folder under "
        f"{default_runs_root()}/ ($FLUXWIDGET_RUNS)",
    )  # fmt: skip
    gen.add_argument(
        "--quiet", action="store_true", help="no progress line and no upload progress bars"
    )
    add_connection_args(gen)


class StatusLine:
    """One status line on stderr: rewritten in place on a terminal, a line per change else."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream, self.enabled = stream, enabled
        self.last = ""

    def __call__(self, record: JobRecord, update: StatusUpdate | None) -> None:
        if not self.enabled:
            return
        if self.stream.isatty():
            self.stream.write(f"\r\x1b[2K{record.detail}")
        else:  # a log file gets one line per phase, not one per step
            text = record.detail.split(" — step")[0].split(" ")[0]
            if text == self.last:
                return
            self.stream.write(record.detail.split(" — step")[0] + "\n")
            self.last = text
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.stream.isatty():
            self.stream.write("\n")


async def run_generate_command(args: argparse.Namespace) -> int:
    """Validate (before anything is sent), submit, wait, save; print the files."""
    params = validate_input(input_fields(args))  # InputError before anything is sent
    status = StatusLine(sys.stderr, enabled=not args.quiet)
    bars = UploadBars(enabled=not args.quiet)
    async with client_for(args) as client:
        client.upload_progress = bars
        run = (
            Run.open_or_create(args.out, kind="generate", claim=True)
            if args.out is not None
            else Run.create(kind="generate", claim=True)
        )
        pipeline = JobPipeline(client, run, on_change=status)
        record = pipeline.plan(params)
        try:
            await pipeline.run(record, timeout=args.timeout)
        except asyncio.CancelledError:
            status.close()
            await run.flush()
            say_interrupted([record], run)
            raise
        except FluxwidgetError as exc:
            status.close()
            await run.flush()
            print(f"fluxwidget: error: {exc}", file=sys.stderr)
            if record.collectable:
                print(f"fluxwidget: collect it later with: fluxwidget recover {run.path}")
            return 1
        finally:
            bars.close()
            await run.flush()
            run.release()
    status.close()
    for image in record.images:
        print(run.path / image.file)
    print(f"request {record.request_id} · seed {record.seed} · {run.path}", file=sys.stderr)
    return 0


def say_interrupted(records: list[JobRecord], run: Run) -> None:
    """Tell which requests were cancelled and how to collect one that finished anyway."""
    ids = [r.request_id for r in records if r.request_id and r.state != "done"]
    if ids:
        print(
            f"\nfluxwidget: interrupted — cancellation was requested for {', '.join(ids)}. "
            f"A job that finished anyway is collected by: fluxwidget recover {run.path}",
            file=sys.stderr,
        )
