"""Shell commands: ``fluxwidget generate``, ``sweep``, ``recover`` and ``emulator``.

Every job runs through the one job pipeline (`fluxwidget.pipeline`) into a run folder, so the
shell, the panel and the notebooks save the same files with the same embedded records.

Exit codes: 0 done, 1 a job or the server failed, 2 bad usage or invalid input (nothing was
sent), 130 interrupted (running jobs are cancelled best-effort).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from .client import FluxClient, key_from_environment
from .client.status import StatusUpdate
from .errors import FluxwidgetError, InputError, MissingKeyError
from .journal import Journal
from .pipeline import JobPipeline
from .records import JobRecord
from .runs import MANIFEST, Run, RunFolderError, default_runs_root, list_runs
from .schema import FluxLoraInput, allowed_values, validate_input

__all__ = ["build_parser", "main", "parse_lora", "parse_size"]


def parse_size(text: str) -> str | dict[str, int]:
    """A preset name, or ``WIDTHxHEIGHT`` for a custom size (validated later by the schema)."""
    width, sep, height = text.lower().partition("x")
    if sep and width.isdigit() and height.isdigit():
        return {"width": int(width), "height": int(height)}
    return text


def parse_lora(text: str) -> dict[str, Any]:
    """``PATH`` or ``PATH:SCALE``. A URL's own colons are kept (``https://…`` has a ``/`` after
    its colon); any other tail must be a number."""
    path, sep, scale = text.rpartition(":")
    if not sep or not path or "/" in scale:
        return {"path": text}
    try:
        return {"path": path, "scale": float(scale)}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{scale!r} is not a number: use PATH or PATH:SCALE, e.g. owner/lora:0.8"
        ) from None


def _field_help(field: str, extra: str = "") -> str:
    """Help text from the schema: title, description, what is allowed, the default."""
    info = FluxLoraInput.model_fields[field]
    text = f"{info.description} Allowed: {allowed_values(field)}."
    if not info.is_required():
        default = info.get_default(call_default_factory=True)
        text += f" Default: {'random' if default is None else default}."
    return (text + " " + extra).replace("%", "%%").strip()


def _input_args(parser: argparse.ArgumentParser) -> None:
    """The job's parameters, with help generated from the schema."""
    parser.add_argument("prompt", help=_field_help("prompt"))
    parser.add_argument(
        "--image-size",
        type=parse_size,
        default="landscape_4_3",
        help=_field_help("image_size", "Custom sizes as WIDTHxHEIGHT."),
    )
    parser.add_argument(
        "--steps", type=int, dest="num_inference_steps", default=28,
        help=_field_help("num_inference_steps"),
    )  # fmt: skip
    parser.add_argument(
        "--guidance", type=float, dest="guidance_scale", default=3.5,
        help=_field_help("guidance_scale"),
    )  # fmt: skip
    parser.add_argument("--num-images", type=int, default=1, help=_field_help("num_images"))
    parser.add_argument("--seed", type=int, help=_field_help("seed"))
    parser.add_argument(
        "--lora", type=parse_lora, action="append", default=[],
        help="PATH[:SCALE], repeatable. " + _field_help("loras"),
    )  # fmt: skip
    parser.add_argument(
        "--format", dest="output_format", default="jpeg", help=_field_help("output_format")
    )
    parser.add_argument("--acceleration", default="none", help=_field_help("acceleration"))
    parser.add_argument(
        "--no-safety-checker", action="store_true", help="Turn the NSFW safety checker off."
    )
    parser.add_argument("--sync-mode", action="store_true", help=_field_help("sync_mode"))


def _connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", help="queue host or proxy (env FLUXWIDGET_BASE_URL)")
    parser.add_argument(
        "--auth-scheme", choices=["Key", "Bearer"], help="Key for fal, Bearer for a proxy"
    )
    parser.add_argument("--endpoint", help="endpoint id (default fal-ai/flux-lora)")
    parser.add_argument(
        "--emulator", action="store_true", help="run on a built-in emulator (no key, no cost)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="fluxwidget",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser(
        "generate",
        help="generate images into a run folder, each with its parameters embedded",
        description="Generate images; they are saved as they arrive, with their parameters.",
    )
    _input_args(gen)
    gen.add_argument("--timeout", type=float, help="give up (and cancel) after N seconds")
    gen.add_argument(
        "--out", type=Path,
        help="run folder (created, or added to); default: a new folder under "
        f"{default_runs_root()}/ ($FLUXWIDGET_RUNS)",
    )  # fmt: skip
    gen.add_argument("--quiet", action="store_true", help="no progress line")
    _connection_args(gen)

    from .sweep.command import add_sweep_command

    add_sweep_command(commands, _input_args, _connection_args)

    rec = commands.add_parser(
        "recover",
        help="collect jobs that were submitted but never saved",
        description="Collect every job that was submitted but whose images are not on disk: in "
        "a run folder, in every run folder under a root, or from the client's journal.",
    )
    rec.add_argument(
        "folder", nargs="?", type=Path,
        help=f"a run folder or a folder of runs (default {default_runs_root()})",
    )  # fmt: skip
    rec.add_argument(
        "--journal", type=Path,
        help="also collect the jobs of this client journal (FLUXWIDGET_JOURNAL) into a new run",
    )  # fmt: skip
    _connection_args(rec)

    emu = commands.add_parser("emulator", help="serve the fal queue emulator on loopback")
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--port", type=int, default=8765)
    emu.add_argument("--workers", type=int, default=2)
    emu.add_argument("--seconds-per-step", type=float, default=0.08)
    return parser


@contextlib.asynccontextmanager
async def client_for(args: argparse.Namespace, **options: Any) -> AsyncIterator[FluxClient]:
    """The client the arguments ask for (on a private emulator with --emulator), closed after."""
    async with contextlib.AsyncExitStack() as stack:
        if args.emulator:
            from .emulator import Emulator

            emulator = stack.enter_context(Emulator())
            options.update(api_key=emulator.api_key, base_url=emulator.url)
        else:
            if key_from_environment() is None:
                raise MissingKeyError(
                    "FAL_KEY is not set — use --emulator (no cost, placeholder images) "
                    "or set a key: export FAL_KEY=key_id:key_secret"
                )
            options.update(base_url=args.base_url, auth_scheme=args.auth_scheme)
        yield await stack.enter_async_context(FluxClient(endpoint=args.endpoint, **options))


def input_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The job's input fields from the parsed arguments."""
    return {
        "prompt": args.prompt,
        "image_size": args.image_size,
        "num_inference_steps": args.num_inference_steps,
        "guidance_scale": args.guidance_scale,
        "num_images": args.num_images,
        "seed": args.seed,
        "loras": args.lora,
        "output_format": args.output_format,
        "acceleration": args.acceleration,
        "enable_safety_checker": not args.no_safety_checker,
        "sync_mode": args.sync_mode,
    }


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


async def _generate(args: argparse.Namespace) -> int:
    params = validate_input(input_fields(args))  # InputError before anything is sent
    status = StatusLine(sys.stderr, enabled=not args.quiet)
    async with client_for(args) as client:
        run = (
            Run.open_or_create(args.out, kind="generate")
            if args.out is not None
            else Run.create(kind="generate")
        )
        pipeline = JobPipeline(client, run, on_change=status)
        record = pipeline.plan(params)
        try:
            await pipeline.run(record, timeout=args.timeout)
        except asyncio.CancelledError:
            status.close()
            await run.flush()
            _say_interrupted([record], run)
            raise
        except FluxwidgetError as exc:
            status.close()
            await run.flush()
            print(f"fluxwidget: error: {exc}", file=sys.stderr)
            if record.collectable:
                print(f"fluxwidget: collect it later with: fluxwidget recover {run.path}")
            return 1
        finally:
            await run.flush()
    status.close()
    for image in record.images:
        print(run.path / image.file)
    print(f"request {record.request_id} · seed {record.seed} · {run.path}", file=sys.stderr)
    return 0


def _say_interrupted(records: list[JobRecord], run: Run) -> None:
    ids = [r.request_id for r in records if r.request_id and r.state != "done"]
    if ids:
        print(
            f"\nfluxwidget: interrupted — cancellation was requested for {', '.join(ids)}. "
            f"A job that finished anyway is collected by: fluxwidget recover {run.path}",
            file=sys.stderr,
        )


async def _recover(args: argparse.Namespace) -> int:
    fresh_root = args.journal is not None and args.folder is not None and not args.folder.exists()
    runs = [] if fresh_root else _runs_to_recover(args.folder)
    if args.journal is not None:
        runs.extend(_runs_from_journal(Journal(args.journal), args.folder))
    pending = [(run, record) for run in runs for record in run.active()]
    if not pending:
        print("nothing to recover: every submitted job has its images on disk", file=sys.stderr)
        return 0
    failures = 0
    async with client_for(args) as client:
        for run in runs:
            pipeline = JobPipeline(client, run, step_logs=False)  # nothing shows steps here
            for record in run.active():
                try:
                    await pipeline.collect(record)
                except FluxwidgetError as exc:
                    failures += 1
                    print(f"fluxwidget: {run.name}/{record.job_id}: {exc}", file=sys.stderr)
                else:
                    for image in record.images:
                        print(run.path / image.file)
            await run.flush()
    return 1 if failures else 0


def _runs_to_recover(folder: Path | None) -> list[Run]:
    """The run folder `folder`, or every run folder under it (default: the runs root)."""
    base = folder if folder is not None else default_runs_root()
    if (base / MANIFEST).exists():
        return [Run.open(base)]
    if folder is not None and not base.is_dir():
        raise RunFolderError(f"{folder} is not a run folder or a folder of runs")
    return list_runs(base)


def _runs_from_journal(journal: Journal, folder: Path | None) -> list[Run]:
    """A new run folder holding the journal's uncollected jobs (by request id)."""
    pending = journal.pending()
    if not pending:
        return []
    root = folder if folder is not None and not (folder / MANIFEST).exists() else None
    run = Run.create(root, kind="recover")
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
    return [run]


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "emulator":
        from .emulator import serve

        serve(
            host=args.host,
            port=args.port,
            workers=args.workers,
            seconds_per_step=args.seconds_per_step,
        )
        return 0
    if args.command == "sweep":
        from .sweep.command import run_sweep_command

        runner: Any = run_sweep_command
    else:
        runner = _generate if args.command == "generate" else _recover
    started = time.monotonic()
    try:
        return int(asyncio.run(runner(args)))
    except (InputError, MissingKeyError, RunFolderError) as exc:
        print(f"fluxwidget: {exc}", file=sys.stderr)
        return 2
    except (FluxwidgetError, ValueError) as exc:
        print(f"fluxwidget: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"\nfluxwidget: interrupted after {time.monotonic() - started:.0f} s", file=sys.stderr
        )
        return 130
