"""Shell commands: ``fluxwidget generate``, ``fluxwidget recover``, ``fluxwidget emulator``.

Exit codes: 0 done, 1 the job or the server failed, 2 bad usage or invalid input (nothing was
sent), 130 interrupted (the job is cancelled best-effort).
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

from .client import FluxClient
from .client.status import StatusUpdate, describe
from .errors import FalError, InputError
from .images import save_image
from .journal import Journal
from .schema import PRESET_SIZES, FluxLoraOutput

__all__ = ["main", "parse_lora", "parse_size"]


def parse_size(text: str) -> str | dict[str, int]:
    """A preset name, or ``WIDTHxHEIGHT`` for a custom size (validated later by the schema)."""
    width, sep, height = text.lower().partition("x")
    if sep and width.isdigit() and height.isdigit():
        return {"width": int(width), "height": int(height)}
    return text


def parse_lora(text: str) -> dict[str, Any]:
    """``PATH`` or ``PATH:SCALE`` (a URL's own colons are kept: only a numeric tail is a scale)."""
    path, sep, scale = text.rpartition(":")
    if sep and path:
        try:
            return {"path": path, "scale": float(scale)}
        except ValueError:
            pass
    return {"path": text}


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
    parser = argparse.ArgumentParser(prog="fluxwidget", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="generate images and save them with metadata")
    gen.add_argument("prompt")
    gen.add_argument(
        "--image-size",
        type=parse_size,
        default="landscape_4_3",
        help=f"one of {', '.join(PRESET_SIZES)}, or WIDTHxHEIGHT",
    )
    gen.add_argument("--steps", type=int, dest="num_inference_steps", default=28)
    gen.add_argument("--guidance", type=float, dest="guidance_scale", default=3.5)
    gen.add_argument("--num-images", type=int, default=1)
    gen.add_argument("--seed", type=int)
    gen.add_argument(
        "--lora", type=parse_lora, action="append", default=[], help="PATH[:SCALE], repeatable"
    )
    gen.add_argument("--format", dest="output_format", default="jpeg", help="jpeg or png")
    gen.add_argument("--acceleration", default="none", help="none or regular")
    gen.add_argument("--no-safety-checker", action="store_true")
    gen.add_argument("--sync-mode", action="store_true", help="images inline as data: URIs")
    gen.add_argument("--timeout", type=float, help="give up (and cancel) after N seconds")
    gen.add_argument("--out", type=Path, required=True, help="folder for the images")
    gen.add_argument("--quiet", action="store_true", help="no progress line")
    _connection_args(gen)

    rec = commands.add_parser("recover", help="fetch the results of jobs never collected")
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument("--journal", type=Path, help="journal file (default: FLUXWIDGET_JOURNAL)")
    _connection_args(rec)

    emu = commands.add_parser("emulator", help="serve the fal queue emulator on loopback")
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--port", type=int, default=8765)
    emu.add_argument("--workers", type=int, default=2)
    emu.add_argument("--seconds-per-step", type=float, default=0.08)
    return parser


@contextlib.asynccontextmanager
async def _client_for(args: argparse.Namespace, **options: Any) -> AsyncIterator[FluxClient]:
    """The client the arguments ask for (on a private emulator with --emulator), closed after."""
    async with contextlib.AsyncExitStack() as stack:
        if args.emulator:
            from .emulator import Emulator

            emulator = stack.enter_context(Emulator())
            options.update(api_key=emulator.api_key, base_url=emulator.url)
        else:
            options.update(base_url=args.base_url, auth_scheme=args.auth_scheme)
        yield await stack.enter_async_context(FluxClient(endpoint=args.endpoint, **options))


class _Progress:
    """One status line on stderr: rewritten in place on a terminal, a line per change else."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream, self.enabled = stream, enabled
        self.started = time.monotonic()
        self.last = ""

    def __call__(self, update: StatusUpdate) -> None:
        if not self.enabled:
            return
        if self.stream.isatty():
            text = describe(update, time.monotonic() - self.started)
            self.stream.write(f"\r\x1b[2K{text}")
        else:  # a log file gets one line per phase, not one per step
            text = describe(update)
            text = text.split(" — step")[0]
            if text == self.last:
                return
            self.stream.write(text + "\n")
        self.last = text
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.last and self.stream.isatty():
            self.stream.write("\n")


async def _save_outputs(
    client: FluxClient, output: FluxLoraOutput, out: Path, request_id: str, payload: Any
) -> list[Path]:
    saved = []
    for index, image in enumerate(output.images):
        data = await client.download(image)
        ext = (image.content_type or "image/jpeg").split("/")[-1].replace("jpg", "jpeg")
        metadata = {
            "endpoint": client.config.endpoint,
            "request_id": request_id,
            "index": index,
            "input": payload,
            "seed": output.seed,
            "has_nsfw_concept": output.is_nsfw(index),
            "timings": output.timings,
            "emulator": bool(getattr(output, "emulator", False)),
        }
        path = out / f"{request_id[:8]}-{index}.{ext}"
        await asyncio.to_thread(save_image, data, path, metadata)
        saved.append(path)
    return saved


async def _generate(args: argparse.Namespace) -> int:
    fields = {
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
    progress = _Progress(sys.stderr, enabled=not args.quiet)
    async with _client_for(args) as client:
        handle = await client.submit(**fields)
        print(f"request {handle.request_id}", file=sys.stderr)
        try:
            output = await asyncio.wait_for(handle.result(progress), args.timeout)
        except asyncio.TimeoutError:
            await handle.cancel_quietly()
            progress.close()
            print(f"fluxwidget: no result after {args.timeout:g} s; cancelled", file=sys.stderr)
            return 1
        except asyncio.CancelledError:
            await asyncio.shield(handle.cancel_quietly())
            raise
        progress.close()
        payload = handle.input.to_payload() if handle.input else fields
        for path in await _save_outputs(client, output, args.out, handle.request_id, payload):
            print(path)
    return 0


async def _recover(args: argparse.Namespace) -> int:
    journal = Journal(args.journal)
    pending = journal.pending()
    if not pending:
        print(f"nothing to recover in {journal.path}", file=sys.stderr)
        return 0
    failures = 0
    async with _client_for(args, journal=journal) as client:
        for record in pending:
            rid = record["request_id"]
            try:
                output = await client.handle(rid).result()
                for path in await _save_outputs(client, output, args.out, rid, record.get("input")):
                    print(path)
            except FalError as exc:
                failures += 1
                print(f"fluxwidget: {rid}: {exc}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "emulator":
        from .emulator import serve

        serve(
            host=args.host,
            port=args.port,
            workers=args.workers,
            seconds_per_step=args.seconds_per_step,
        )
        return 0
    runner = _generate if args.command == "generate" else _recover
    try:
        return asyncio.run(runner(args))
    except InputError as exc:
        print(f"fluxwidget: {exc}", file=sys.stderr)
        return 2
    except (FalError, ValueError) as exc:
        print(f"fluxwidget: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nfluxwidget: interrupted", file=sys.stderr)
        return 130
