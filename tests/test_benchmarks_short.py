"""Every benchmark script runs in its short mode (BENCH_SHORT=1) and reports figures.

Benchmarks are not tests: nothing here checks a speed. This only keeps the scripts from rotting:
each one must finish, print its table, and (the network ones) write finite figures.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
WITH_JSON = ("bench_network", "bench_sweep", "bench_waiting")
PLAIN = (
    "bench_status_updates",
    "bench_concurrency",
    "bench_overhead",
    "bench_thumbnails",
    "bench_upload",
)


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def test_every_benchmark_runs_in_short_mode(tmp_path: Path) -> None:
    env = {**os.environ, "BENCH_SHORT": "1"}
    runs: dict[str, subprocess.Popen[str]] = {}
    for name in WITH_JSON + PLAIN:
        extra = ["--json", str(tmp_path / f"{name}.json")] if name in WITH_JSON else []
        runs[name] = subprocess.Popen(
            [sys.executable, str(BENCHMARKS / f"{name}.py"), *extra],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    outputs = {name: run.communicate(timeout=110)[0] for name, run in runs.items()}
    for name, run in runs.items():
        assert run.returncode == 0, f"{name} failed:\n{outputs[name]}"
        assert "BENCH_SHORT" in outputs[name] or name in PLAIN
        assert "-----" in outputs[name], f"{name} printed no table:\n{outputs[name]}"

    network = json.loads((tmp_path / "bench_network.json").read_text())["links"]
    assert set(network) == {"loopback", "20 ms", "20 ms, stream closes"}
    for rows in network.values():
        for name in ("fluxwidget", "floor", "floor split"):
            row = rows[name]
            assert all(finite(v) and v > 0 for v in row["c2r_p50"] + row["c2r_p95"])
            assert row["median"]["req"] >= 3  # submit, a status call or stream, result
            assert row["routes"]["submit"] == 1
            assert row["routes"]["result"] == 1

    sweep = json.loads((tmp_path / "bench_sweep.json").read_text())["configs"]
    assert set(sweep) == {"8x4", "16x8"}
    for rows in sweep.values():
        assert all(finite(r) and r > 0 for r in rows["fluxwidget"]["ratio"])

    waiting = json.loads((tmp_path / "bench_waiting.json").read_text())["clients"]
    row = waiting["fluxwidget"]
    assert row["jobs"] == 50
    assert finite(row["cpu_share"])
    assert finite(row["status_per_s"])
    assert row["client_sockets"] >= 1
