"""The shared emulator runs in a child process that dies with its parent, however it ends."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from fluxwidget.emulator import EmulatorProcess, is_emulator_url, shared_emulator

APP = "/fal-ai/flux-lora"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) is gone for our purpose
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1][0] != "Z"


def test_shared_emulator_is_a_child_process_serving_the_queue() -> None:
    emulator = shared_emulator()
    assert isinstance(emulator, EmulatorProcess)
    assert emulator.pid is not None
    assert emulator.pid != os.getpid()
    assert is_emulator_url(emulator.url)
    reply = httpx.post(
        f"{emulator.url}{APP}",
        json={"prompt": "x"},
        headers={"Authorization": f"Key {emulator.api_key}"},
    )
    assert reply.status_code == 200


def test_stop_ends_the_child() -> None:
    emulator = EmulatorProcess(seconds_per_step=0.001).start()
    pid = emulator.pid
    assert pid is not None
    assert emulator.running
    emulator.stop()
    assert not emulator.running
    assert not _alive(pid)
    assert not is_emulator_url(emulator.url)


def test_the_child_dies_when_its_parent_is_killed() -> None:
    code = (
        "from fluxwidget.emulator import shared_emulator\n"
        "print(shared_emulator().pid, flush=True)\n"
        "import time; time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.kill()  # SIGKILL: no atexit, no cleanup in the parent
        parent.wait()
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        parent.kill()
        parent.wait()
