"""One emulator in its own process, driven by a benchmark over stdin/stdout (JSON lines).

Started by `_harness.ServerProcess`; prints ``{"url": ..., "api_key": ...}`` once serving, then
answers one JSON line per command line:

- ``{"cmd": "link", "rtt": 0.02, "connect_rtts": 2, "stream_close": false}``: emulate a link
  from now on (``stream_close``: end each status stream with ``Connection: close``);
- ``{"cmd": "stats"}``: calls by route, connections opened / open / at most open at once;
- ``{"cmd": "jobs", "ids": [...]}``: each job's ``[submitted_at, started_at, completed_at]``
  (``time.monotonic()``, a system-wide clock on Linux, so the benchmark can compare);
- ``{"cmd": "uploads"}``: the size of every file uploaded to the emulator's storage;
- ``{"cmd": "stop"}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

from fluxwidget.emulator import Emulator


def route_of(path: str) -> str:
    """Name a call by its path, as the emulator routes it."""
    if path.endswith("/status/stream"):
        return "stream"
    if path.endswith("/status"):
        return "status"
    if path.endswith("/cancel"):
        return "cancel"
    if "/requests/" in path:
        return "result"
    if path.startswith("/files/"):
        return "file"
    return "submit"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds-per-step", type=float, default=0.05)
    parser.add_argument("--run-jitter", type=float, default=0.0)
    args = parser.parse_args()
    routes: Counter[str] = Counter()
    seen = 0
    with Emulator(
        workers=args.workers,
        seconds_per_step=args.seconds_per_step,
        run_jitter=args.run_jitter,
    ) as emu:
        print(json.dumps({"url": emu.url, "api_key": emu.api_key}), flush=True)
        for line in sys.stdin:
            command = json.loads(line)
            reply: dict[str, Any] = {}
            if command["cmd"] == "stop":
                break
            if command["cmd"] == "link":
                emu.set_link(rtt=command["rtt"], connect_rtts=command["connect_rtts"])
                emu.set_stream_connection_close(bool(command.get("stream_close", False)))
            elif command["cmd"] == "stats":
                calls = emu.calls
                routes.update(route_of(path) for _method, path, _code in calls[seen:])
                seen = len(calls)
                conns = emu.connections
                reply = {
                    "routes": dict(routes),
                    "opened": conns.opened,
                    "open": conns.open,
                    "peak_open": conns.peak_open,
                }
            elif command["cmd"] == "uploads":
                reply = {"sizes": [info.size for info in emu.uploads]}
            elif command["cmd"] == "jobs":
                for request_id in command["ids"]:
                    job = emu.job(request_id)
                    reply[request_id] = (
                        None
                        if job is None
                        else [job.submitted_at, job.started_at, job.completed_at]
                    )
            print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
