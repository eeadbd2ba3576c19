"""``fluxwidget sweep`` as a user runs it: a real process, exports, dry run, SIGKILL and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from fluxwidget.emulator import Emulator
from fluxwidget.images import read_metadata
from fluxwidget.store.runs import Run

LORA = "https://example.org/style.safetensors:1.0"
AXES = ["--axis", "guidance_scale=2,3.5,5", "--axis", "loras[0].scale=0.4-1.2 [3]"]


def sweep_cli(*args: str, env: dict[str, str] | None = None) -> list[str]:
    return [sys.executable, "-m", "fluxwidget", "sweep", "a fox", *AXES, "--lora", LORA, *args]


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


def test_a_3x3_sweep_from_the_shell_exports_a_labelled_grid(tmp_path: Path) -> None:
    out = tmp_path / "fox"
    done = run(sweep_cli("--emulator", "--out", str(out), "--image-size", "square", "--seed", "4"))
    assert done.returncode == 0, done.stderr
    exported = [Path(line) for line in done.stdout.split()]
    assert [path.name for path in exported] == ["grid.jpg", "report.html"]
    with Image.open(out / "grid.jpg") as grid:
        assert grid.width > 3 * 100
        assert grid.height > 3 * 100
    report = (out / "report.html").read_text()
    assert "guidance_scale" in report
    assert "loras[0].scale" in report
    run_folder = Run.open(out)
    assert [record.state for record in run_folder.records()] == ["done"] * 9
    assert "9/9 done" in done.stderr
    assert "estimate" in done.stderr
    # the bar is redrawn when what it shows changes (a cell sent, finished), not at every step
    redraws = done.stderr.count("in flight,")
    assert 0 < redraws <= 2 * 9 + 2


def test_dry_run_prints_cells_and_cost_and_sends_nothing(tmp_path: Path) -> None:
    with Emulator(seconds_per_step=0.005) as emu:
        done = run(
            sweep_cli("--dry-run", "--base-url", emu.url, "--out", str(tmp_path / "x")),
            env={"FAL_KEY": emu.api_key},
        )
        submits = emu.submit_count
    assert done.returncode == 0, done.stderr
    assert "9 cells (3 × 3 × 1)" in done.stdout
    assert "guidance_scale=3.5, loras[0].scale=0.8" in done.stdout
    assert "estimate" in done.stdout
    assert submits == 0
    assert not (tmp_path / "x").exists()


def test_dry_run_needs_no_key(tmp_path: Path) -> None:
    done = run(sweep_cli("--dry-run", "--out", str(tmp_path / "x")))
    assert done.returncode == 0, done.stderr
    assert "$0.035/MP" in done.stdout
    assert not (tmp_path / "x").exists()


def test_a_bad_range_shows_the_syntax(tmp_path: Path) -> None:
    done = run(
        [sys.executable, "-m", "fluxwidget", "sweep", "x", "--emulator",
         "--axis", "guidance_scale=2-", "--out", str(tmp_path / "x")]
    )  # fmt: skip
    assert done.returncode == 2
    assert "guidance_scale" in done.stderr
    assert "0.4-1.2 [3]" in done.stderr  # the syntax is shown


def test_a_sweep_killed_midway_resumes_with_every_image_and_nothing_paid_twice(
    tmp_path: Path,
) -> None:
    out = tmp_path / "fox"
    with Emulator(workers=2, seconds_per_step=0.02, keepalive_interval=0.2) as emu:
        env = {**os.environ, "FAL_KEY": emu.api_key}
        args = sweep_cli("--base-url", emu.url, "--out", str(out), "--image-size", "square",
                         "--concurrency", "8", "--quiet")  # fmt: skip
        process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        journal = out / "journal.jsonl"
        deadline = time.monotonic() + 60
        submitted = 0
        while time.monotonic() < deadline and submitted < 8:
            if journal.exists():
                lines = journal.read_text().splitlines()
                submitted = sum('"event": "submitted"' in line for line in lines)
            time.sleep(0.01)
        # eight cells are on the server, the ninth waits for a slot: kill without warning
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        assert submitted == 8
        assert emu.submit_count == 8
        resumed = run(args, env=env)
        submits = emu.submit_count
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming: 8 of 9 cells already started" in resumed.stderr
    assert submits == 9  # the eight were collected by request id, only the ninth was sent
    manifest = json.loads((out / "manifest.json").read_text())
    assert [row["state"] for row in manifest["jobs"]] == ["done"] * 9
    request_ids = {row["request_id"] for row in manifest["jobs"]}
    assert len(request_ids) == 9
    for row in manifest["jobs"]:
        (image,) = row["images"]
        assert read_metadata(out / image["file"])["request_id"] == row["request_id"]  # type: ignore[index]


def test_a_resumed_sweep_reports_the_whole_runs_totals(tmp_path: Path) -> None:
    out = tmp_path / "fox"
    command = [sys.executable, "-m", "fluxwidget", "sweep", "a fox", "--image-size", "64x64",
               "--steps", "2", "--axis", "seed=1,2", "--emulator", "--quiet",
               "--out", str(out)]  # fmt: skip
    first = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    report = (out / "report.html").read_text()
    assert "2/2 done" in report
    assert "the whole sweep: 2 cells" in report  # not "0 cells ≈ $0.00" after a resume
    assert oct((out / "report.html").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def test_an_unknown_option_names_the_command_and_guesses() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fluxwidget", "sweep", "x", "--guidanse-scale", "3"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "usage: fluxwidget sweep" in done.stderr
    assert "did you mean --guidance-scale?" in done.stderr


def test_a_sweep_refused_for_its_cost_leaves_no_folder(tmp_path: Path) -> None:
    with Emulator(seconds_per_step=0.001) as emu:
        env = {
            **os.environ,
            "FAL_KEY": emu.api_key,
            "FLUXWIDGET_PLATFORM_URL": "http://127.0.0.1:9/v1",
        }
        done = subprocess.run(
            [sys.executable, "-m", "fluxwidget", "sweep", "a fox", "--axis", "seed=1-40",
             "--base-url", emu.url, "--out", str(tmp_path / "pricey"), "--quiet"],
            capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        submits = emu.submit_count
    assert done.returncode == 2
    assert "pass --yes" in done.stderr
    assert not (tmp_path / "pricey").exists()
    assert submits == 0


def test_on_the_emulator_no_confirmation_is_needed(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fluxwidget", "sweep", "a fox", "--axis", "seed=1-40",
         "--image-size", "64x64", "--steps", "1", "--emulator", "--quiet",
         "--out", str(tmp_path / "free")],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "nothing is billed" in done.stderr
