"""Shell commands: ``fluxwidget generate``, ``sweep``, ``recover``, ``rate``, ``report`` and
``emulator``.

Every job runs through the one job pipeline (`fluxwidget.pipeline`) into a run folder, so the
shell, the panel and the notebooks save the same files with the same embedded records. The
job's options are generated from the schema (`fluxwidget.cli.options`).

Exit codes: 0 done, 1 a job or the server failed, 2 bad usage or invalid input (nothing was
sent), 130 interrupted (running jobs are cancelled best-effort).
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from ..errors import FluxwidgetError, InputError, MissingKeyError, RunFolderError
from .generate import add_generate_command, run_generate_command
from .options import parse_lora, parse_size
from .rate import add_rate_command, add_report_command, run_rate_command, run_report_command
from .recover import add_recover_command, run_recover_command
from .sweep import add_sweep_command, run_sweep_command

__all__ = ["build_parser", "main", "parse_lora", "parse_size"]

COMMANDS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "generate": run_generate_command,
    "sweep": run_sweep_command,
    "recover": run_recover_command,
    "rate": run_rate_command,
    "report": run_report_command,
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="fluxwidget",
        description=(__doc__ or "").split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_generate_command(commands)
    add_sweep_command(commands)
    add_recover_command(commands)
    add_rate_command(commands)
    add_report_command(commands)
    emu = commands.add_parser("emulator", help="serve the fal queue emulator on loopback")
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--port", type=int, default=8765)
    emu.add_argument("--workers", type=int, default=2)
    emu.add_argument("--seconds-per-step", type=float, default=0.08)
    return parser


def _command_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The sub-command's own parser (for its usage line and its options)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen: argparse.ArgumentParser = action.choices[name]
            return chosen
    return parser


def unknown_options_message(command: argparse.ArgumentParser, extras: list[str]) -> str:
    """What is wrong with options the command does not know, with a guess for each."""
    known = [flag for flag in command._option_string_actions if flag.startswith("--")]
    parts = []
    for extra in extras:
        flag = extra.split("=", 1)[0]
        guess = difflib.get_close_matches(flag, known, n=1, cutoff=0.6) if flag[:1] == "-" else []
        hint = f" (did you mean {guess[0]}?)" if guess else ""
        parts.append(f"{extra}{hint}")
    return "unrecognized arguments: " + ", ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; returns the exit code."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # said by the sub-command, with its usage and a guess at what was meant
        command = _command_parser(parser, args.command)
        command.error(unknown_options_message(command, extras))
    if args.command == "emulator":
        from ..emulator import serve  # the server's packages load only for this command

        serve(
            host=args.host,
            port=args.port,
            workers=args.workers,
            seconds_per_step=args.seconds_per_step,
        )
        return 0
    started = time.monotonic()
    try:
        return int(asyncio.run(COMMANDS[args.command](args)))
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
