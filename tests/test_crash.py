"""Crash tests: a real `fluxwidget` process killed with SIGKILL at the worst moments.

Each ends with every image on disk and no job submitted twice (the emulator counts submits).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from fluxwidget.emulator import Emulator
from fluxwidget.images import read_metadata
from fluxwidget.store.runs import Run


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "fluxwidget", *args]


def _events(folder: Path) -> list[str]:
    journal = folder / "journal.jsonl"
    if not journal.exists():
        return []
    events = []
    for line in journal.read_text().splitlines():
        try:
            events.append(json.loads(line)["event"])
        except (ValueError, KeyError):
            continue
    return events


def _kill_when(process: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not ready():
        if process.poll() is not None:
            raise AssertionError(f"the process ended early with {process.returncode}")
        time.sleep(0.01)
    assert ready(), "the moment to kill never came"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def test_killed_during_the_download_then_during_recover_then_recovered(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with Emulator(workers=2, seconds_per_step=0.002, keepalive_interval=0.2) as emu:
        env = {**os.environ, "FAL_KEY": emu.api_key}
        connection = ["--base-url", emu.url]
        # 1. the images' downloads stall: kill once the result (with its image URLs) is journaled
        emu.inject("file", delay=30, times=100)
        generate = subprocess.Popen(
            _cli("generate", "a tiger eye", "--num-images", "2", "--image-size", "square",
                 "--out", str(out), "--quiet", *connection),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        _kill_when(generate, lambda: "completed" in _events(out))
        (record,) = Run.open(out).active()
        assert record.state == "fetching"
        assert len(record.image_urls) == 2
        assert not list(out.glob("*.jpg"))
        # 2. recover stalls on the same downloads: kill it too, midway
        recover = subprocess.Popen(
            _cli("recover", str(out), *connection),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        started = time.monotonic()  # its downloads stall for 30 s: any moment after it has
        _kill_when(recover, lambda: time.monotonic() - started > 2.0)  # started is "during" them
        assert not list(out.glob("*.jpg"))
        # 3. the network is back: recover collects the images, nothing is submitted again
        emu.clear_faults()
        done = subprocess.run(
            _cli("recover", str(out), *connection), env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        submits = emu.submit_count
    assert done.returncode == 0, done.stderr
    saved = [Path(line) for line in done.stdout.split()]
    assert len(saved) == 2
    assert submits == 1
    final = Run.open(out)
    (job,) = final.records()
    assert job.state == "done"
    for path in saved:
        assert read_metadata(path)["request_id"] == job.request_id  # type: ignore[index]
    again = subprocess.run(
        _cli("recover", str(out), "--emulator"), env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert again.returncode == 0
    assert "nothing to recover" in again.stderr


def test_killed_right_after_the_submit_is_collected_by_request_id(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with Emulator(workers=1, seconds_per_step=0.05, keepalive_interval=0.2) as emu:
        env = {**os.environ, "FAL_KEY": emu.api_key}
        generate = subprocess.Popen(
            _cli("generate", "a fox", "--image-size", "square", "--steps", "20", "--out", str(out),
                 "--quiet", "--base-url", emu.url),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        _kill_when(generate, lambda: "submitted" in _events(out))
        done = subprocess.run(
            _cli("recover", str(out), "--base-url", emu.url),
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        submits = emu.submit_count
    assert done.returncode == 0, done.stderr
    assert submits == 1
    (saved,) = [Path(line) for line in done.stdout.split()]
    assert saved.exists()
    assert Run.open(out).records()[0].state == "done"


def test_killed_while_the_submit_reply_was_on_its_way_is_found_by_the_listing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    with Emulator(workers=2, seconds_per_step=0.002, keepalive_interval=0.2) as emu:
        env = {**os.environ, "FAL_KEY": emu.api_key}
        connection = ["--base-url", emu.url]
        # fal accepts the job, but its reply is slow to come: the process dies meanwhile
        emu.inject("submit", delay=30, after_accept=True)
        generate = subprocess.Popen(
            _cli("generate", "a lynx", "--image-size", "square", "--steps", "4",
                 "--out", str(out), "--quiet", *connection),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        _kill_when(generate, lambda: emu.submit_count == 1 and "submitting" in _events(out))
        (record,) = Run.open(out).records()
        assert record.state == "unknown"
        assert record.request_id is None
        done = subprocess.run(
            _cli("recover", str(out), *connection), env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        submits = emu.submit_count
        (accepted,) = emu.jobs
    assert done.returncode == 0, done.stderr
    assert submits == 1  # found through the listing and collected: never paid twice
    (saved,) = [Path(line) for line in done.stdout.split()]
    assert read_metadata(saved)["request_id"] == accepted  # type: ignore[index]
    assert Run.open(out).records()[0].state == "done"
