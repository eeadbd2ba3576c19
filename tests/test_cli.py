"""The shell commands, run as a user would: a real process, exit codes, files on disk."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from fluxwidget.client.journal import Journal
from fluxwidget.emulator import Emulator
from fluxwidget.images import open_image, read_metadata


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fluxwidget", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_generate_on_the_emulator_saves_images_with_metadata(tmp_path: Path) -> None:
    done = run_cli(
        "generate", "a tiger eye", "--emulator", "--out", str(tmp_path),
        "--num-images", "2", "--seed", "5", "--image-size", "320x240", "--format", "png",
        "--lora", "https://example.org/style.safetensors:0.7", "--steps", "4",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    saved = [Path(line) for line in done.stdout.split()]
    assert len(saved) == 2
    assert {path.parent for path in saved} == {tmp_path}  # --out is the run folder
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (job,) = manifest["jobs"]
    assert job["state"] == "done"
    assert [image["file"] for image in job["images"]] == [path.name for path in saved]
    for path in saved:
        assert open_image(path.read_bytes()).size == (320, 240)
        embedded = read_metadata(path)
        assert embedded is not None
        assert embedded["input"]["loras"] == [
            {"path": "https://example.org/style.safetensors", "scale": 0.7}
        ]
        assert embedded["seed"] == 5
        assert embedded["emulator"] is True
        assert embedded["request_id"] == job["request_id"]
        assert embedded["input"] == job["input"]
    assert "Running" in done.stderr
    assert "Downloading" in done.stderr


def test_invalid_input_exits_2_before_sending(tmp_path: Path) -> None:
    done = run_cli(
        "generate", "x", "--emulator", "--out", str(tmp_path), "--image-size", "square pro"
    )
    assert done.returncode == 2
    assert "image_size: 'square pro' is not allowed" in done.stderr
    assert "square_hd (1024×1024)" in done.stderr
    assert not list(tmp_path.iterdir())


def test_no_key_and_no_emulator_says_what_to_do(tmp_path: Path) -> None:
    done = run_cli("generate", "x", "--out", str(tmp_path / "run"))
    assert done.returncode == 2
    assert "FAL_KEY is not set — use --emulator" in done.stderr
    assert not (tmp_path / "run").exists()


def test_a_lora_scale_that_is_not_a_number_is_refused(tmp_path: Path) -> None:
    done = run_cli("generate", "x", "--emulator", "--lora", "owner/lora:abc")
    assert done.returncode == 2
    assert "'abc' is not a number" in done.stderr


def test_help_shows_ranges_and_defaults_from_the_schema() -> None:
    done = run_cli("generate", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "a whole number from 1 to 50. Default: 28" in text
    assert "a number from 0 to 35. Default: 3.5" in text
    assert "square_hd" in text
    assert "PydanticUndefined" not in text  # the prompt is required: no default shown


def test_refused_key_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    with Emulator(seconds_per_step=0.005) as emu:
        done = run_cli(
            "generate", "x", "--base-url", emu.url, "--out", str(tmp_path),
            env={"FAL_KEY": "not-the:key"},
        )  # fmt: skip
    assert done.returncode == 1
    assert "401: the key was refused — set FAL_KEY" in done.stderr
    assert "not-the:key" not in done.stderr + done.stdout


def test_bearer_proxy_and_recover_from_a_client_journal(tmp_path: Path) -> None:
    with Emulator(seconds_per_step=0.005) as emu:
        # a job submitted and never collected (the process died) ...
        journal = tmp_path / "journal.jsonl"
        reply = httpx.post(
            f"{emu.url}/fal-ai/flux-lora",
            json={"prompt": "lost", "seed": 9},
            headers={"Authorization": f"Bearer {emu.api_key}"},
        )
        Journal(journal).append("submitted", reply.json()["request_id"], input={"prompt": "lost"})
        done = run_cli(
            "recover", str(tmp_path / "runs"), "--journal", str(journal),
            "--base-url", emu.url, "--auth-scheme", "Bearer",
            env={"FAL_KEY": emu.api_key},
        )  # fmt: skip
        again = run_cli(
            "recover", str(tmp_path / "runs"), "--base-url", emu.url, "--auth-scheme", "Bearer",
            env={"FAL_KEY": emu.api_key},
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (saved,) = [Path(line) for line in done.stdout.split()]
    assert saved.parent.parent == tmp_path / "runs"
    assert read_metadata(saved)["seed"] == 9  # type: ignore[index]
    assert again.returncode == 0
    assert "nothing to recover" in again.stderr
    assert Journal(journal).pending() == []
    assert emu.submit_count == 1


def test_emulator_command_serves_on_the_given_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "fluxwidget", "emulator", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout or ()], daemon=True
    )
    reader.start()
    try:
        # Wait for the banner rather than polling the port: a port picked this way can
        # briefly belong to another process, whose reply would prove nothing.
        banner = ""
        deadline = time.monotonic() + 60
        while "serving at" not in banner and time.monotonic() < deadline:
            try:
                banner = lines.get(timeout=1)
            except queue.Empty:
                assert process.poll() is None, "the emulator command exited early"
        assert f"serving at http://127.0.0.1:{port}" in banner
        reply = httpx.get(f"http://127.0.0.1:{port}/fal-ai/flux-lora/requests/x/status")
        assert reply.status_code == 401  # serving, and asking for the key
    finally:
        process.terminate()
        process.wait(timeout=10)
        reader.join(timeout=10)
