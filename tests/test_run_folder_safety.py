"""Never pay twice, never lose a paid image — at the run folder: one writer at a time (real
processes), the journal as the truth (a lost or tampered manifest), files complete under their
names (SIGKILL), a full disk (injected ENOSPC, and a real tmpfs when the tests run as root),
and `recover` going back to the server the run used."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fluxwidget import disk
from fluxwidget.client.journal import Journal
from fluxwidget.emulator import Emulator
from fluxwidget.errors import DiskFullError, RunFolderBusy
from fluxwidget.images import read_metadata
from fluxwidget.pipeline import JobPipeline
from fluxwidget.store.runs import MANIFEST, Run
from tests.clients import client_for

SWEEP = ["a fox", "--image-size", "64x64", "--steps", "12", "--axis", "seed=1-8",
         "--axis", "guidance_scale=2,4", "--yes", "--quiet", "--concurrency", "3"]  # fmt: skip


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "fluxwidget", *args]


def _submits_in(folder: Path) -> int:
    journal = folder / "journal.jsonl"
    if not journal.exists():
        return 0
    return sum(1 for line in journal.read_text().splitlines() if '"submitted"' in line)


def _wait_for(predicate: object, what: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.01)


def _images(folder: Path) -> list[str]:
    """The cells' image files (not the exported grid)."""
    return sorted(p.name for p in folder.glob("c*") if p.suffix in (".jpg", ".png"))


@pytest.mark.timeout(180)
def test_two_processes_on_one_sweep_folder_pay_once(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    with Emulator(workers=3, seconds_per_step=0.01) as emu:
        env = {**os.environ, "FAL_KEY": emu.api_key}
        command = _cli("sweep", *SWEEP, "--out", str(out), "--base-url", emu.url)
        together = [
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)
        ]
        outcomes = [(p.wait(timeout=120), p.stderr.read().decode()) for p in together]  # type: ignore[union-attr]
        codes = sorted(code for code, _ in outcomes)
        assert codes == [0, 2], outcomes
        refused = next(text for code, text in outcomes if code == 2)
        assert "is being written by process" in refused
        assert "Traceback" not in refused
        # later, while nothing runs: a third run only finds everything done
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        submits = emu.submit_count
    assert submits == 16
    assert len(_images(out)) == 16


@pytest.mark.timeout(180)
def test_a_second_process_while_the_first_runs_is_refused_at_once(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    with Emulator(workers=2, seconds_per_step=0.02) as emu:
        env = {**os.environ, "FAL_KEY": emu.api_key}
        command = _cli("sweep", *SWEEP, "--out", str(out), "--base-url", emu.url)
        first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _wait_for(lambda: emu.submit_count >= 2, "the first process submits")
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert f"process {first.pid}" in second.stderr
        assert first.wait(timeout=120) == 0
        submits = emu.submit_count
    assert submits == 16


def test_a_lock_left_by_a_killed_process_never_blocks(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from fluxwidget.store.runs import Run;"
         f"run = Run.create(path={str(folder)!r}, claim=True); print('held', flush=True);"
         "time.sleep(60)"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == b"held"
    with pytest.raises(RunFolderBusy) as busy:
        Run.open(folder, claim=True)
    assert busy.value.owner["pid"] == holder.pid
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    run = Run.open(folder, claim=True)  # the dead process's lock is gone with it
    assert run.lock.held
    run.release()


def test_a_claim_refused_before_the_holder_says_who_it_is_still_names_it(tmp_path: Path) -> None:
    """The holder writes its owner record just after it takes the lock; a claim refused in
    that gap waits for the record rather than saying "another process" (or naming the last,
    dead holder)."""
    import threading

    from filelock import FileLock

    from fluxwidget.store.lock import LOCK_FILE, OWNER_FILE, RunLock

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / OWNER_FILE).write_text(json.dumps({"pid": 999_999_999, "host": os.uname().nodename}))
    raw = FileLock(folder / LOCK_FILE, thread_local=False)
    raw.acquire()
    me = {"pid": os.getpid(), "host": os.uname().nodename, "since": time.time()}
    late = threading.Timer(0.3, lambda: (folder / OWNER_FILE).write_text(json.dumps(me)))
    late.start()
    try:
        with pytest.raises(RunFolderBusy) as busy:
            RunLock(folder).claim()
    finally:
        late.join()
        raw.release()
    assert busy.value.owner["pid"] == os.getpid()
    assert f"process {os.getpid()}" in str(busy.value)


def test_two_runs_in_one_process_are_one_writer_at_a_time(tmp_path: Path) -> None:
    first = Run.create(path=tmp_path / "r", claim=True)
    with pytest.raises(RunFolderBusy):
        Run.open(first.path, claim=True)
    first.release()
    Run.open(first.path, claim=True).release()


@pytest.mark.timeout(180)
def test_a_deleted_manifest_is_rebuilt_from_the_journal_and_nothing_is_paid_twice(
    tmp_path: Path,
) -> None:
    out = tmp_path / "sweep"
    with Emulator(workers=2, seconds_per_step=0.03) as emu:
        env = {**os.environ, "FAL_KEY": emu.api_key}
        command = _cli("sweep", *SWEEP, "--out", str(out), "--base-url", emu.url)
        first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _wait_for(lambda: _submits_in(out) >= 8 if out.exists() else False, "8 submits")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        before = emu.submit_count
        (out / MANIFEST).unlink()
        command.append("--resubmit-unknown")  # a cell killed on the wire: looked up first
        rebuilt = Run.open(out)
        assert rebuilt.rebuilt
        assert len(rebuilt.jobs) == 16
        assert sum(1 for job in rebuilt.jobs.values() if job.request_id) <= before
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        submits = emu.submit_count
    assert submits == 16  # the 8 (or so) already paid were collected, not sent again
    names = _images(out)
    assert names == sorted(f"c{index:04d}-0.jpg" for index in range(16))  # one file per image
    for name in names:
        assert read_metadata(out / name) is not None


def test_a_tampered_manifest_is_rebuilt_not_a_traceback(tmp_path: Path) -> None:
    run = Run.create(path=tmp_path / "r")
    from fluxwidget.store.records import JobRecord

    run.add(JobRecord(job_id="j0001", input={"prompt": "x"}, endpoint="fal-ai/flux-lora"))
    run.save()
    Journal.flush()
    manifest = json.loads((run.path / MANIFEST).read_text())
    manifest["jobs"][0]["state"] = 42
    (run.path / MANIFEST).write_text(json.dumps(manifest))
    again = Run.open(run.path)
    assert again.rebuilt
    assert again.jobs["j0001"].state == "pending"


@pytest.mark.timeout(180)
def test_sigkill_mid_sweep_then_resume_leaves_one_complete_file_per_image(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    with Emulator(workers=3, seconds_per_step=0.01) as emu:
        env = {**os.environ, "FAL_KEY": emu.api_key}
        command = _cli("sweep", *SWEEP, "--out", str(out), "--base-url", emu.url)
        for _ in range(3):  # killed while images arrive, three times over
            seen = len(_images(out)) if out.exists() else 0
            run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

            def arrived(run: subprocess.Popen[bytes] = run, seen: int = seen) -> bool:
                return (len(_images(out)) if out.exists() else 0) > seen or run.poll() is not None

            _wait_for(arrived, "a new image")
            run.send_signal(signal.SIGKILL)
            run.wait(timeout=30)
        # a cell killed with its submit on the wire is looked up in the request listing:
        # accepted, it is collected; absent, --resubmit-unknown may send it (it was not paid)
        done = subprocess.run(
            [*command, "--resubmit-unknown"], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        submits = emu.submit_count
    assert submits == 16
    names = _images(out)
    assert names == sorted(f"c{index:04d}-0.jpg" for index in range(16))
    assert not list(out.glob(".*.tmp")), "no temporary file left under the run"
    manifest = json.loads((out / MANIFEST).read_text())
    for job in manifest["jobs"]:
        (image,) = job["images"]
        assert read_metadata(out / image["file"])["request_id"] == job["request_id"]  # type: ignore[index]


async def test_a_full_disk_is_a_typed_error_naming_the_file_and_the_journal_stays_whole(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Run.create(path=tmp_path / "r")
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        if len(data) > 2000:  # an image, not a journal line
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(disk.os, "write", full)
    async with client_for(emu) as client:
        pipeline = JobPipeline(client, run)
        with pytest.raises(DiskFullError) as error:
            await pipeline.run({"prompt": "x", "image_size": "square"})
    assert "j0001-0.jpg" in str(error.value)
    assert "bytes free" in str(error.value)
    with contextlib.suppress(DiskFullError):  # the manifest cannot be written either
        await run.flush()
    assert not list(run.path.glob("*.jpg")), "no partial image under a final name"
    assert not list(run.path.glob(".*.tmp"))
    monkeypatch.undo()
    journal = Journal(run.path / "journal.jsonl")
    events = [r["event"] for r in journal.records() if r.get("job_id")]
    assert journal.problems == []  # every line whole
    assert events[-1] == "completed"  # not failed for good: the job stays collectable
    run.release()
    (record,) = Run.open(run.path).active()  # still collectable: the paid image is not lost
    async with client_for(emu) as client:
        done = await JobPipeline(client, Run.open(run.path)).collect(record)
    assert done.state == "done"
    assert emu.submit_count == 1


def test_a_torn_journal_line_is_never_appended_onto(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    journal.append("submitted", "r1", job_id="a")
    with path.open("ab") as fh:
        fh.write(b'{"event": "saved", "request_id": "r1", "ima')  # a crash mid-write
    assert [r["event"] for r in journal.records()] == ["submitted"]  # the torn tail is skipped
    assert journal.problems == []
    journal.append("saved", "r2", job_id="b")
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert json.loads(lines[-2])["request_id"] == "r2"
    assert [r["event"] for r in journal.records()] == ["submitted", "saved"]
    assert len(journal.problems) == 1
    assert f"{path}:2:" in journal.problems[0]


def test_an_invalid_utf8_byte_names_its_line_and_does_not_block(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    Journal(path).append("submitted", "r1", job_id="a")
    with path.open("ab") as fh:
        fh.write(b'{"event": "x\xff"}\n')
    Journal(path).append("submitted", "r2", job_id="b")
    journal = Journal(path)
    assert [r["request_id"] for r in journal.records()] == ["r1", "r2"]
    assert f"{path}:2:" in journal.problems[0]


@pytest.mark.timeout(180)
def test_recover_goes_back_to_the_server_the_run_used_and_judges_by_the_files(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    with Emulator(workers=1, seconds_per_step=0.005) as emu:
        env = {**os.environ, "FAL_KEY": emu.api_key}
        made = subprocess.run(
            _cli("generate", "a fox", "--image-size", "square", "--out", str(out), "--quiet",
                 "--base-url", emu.url),
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        (image,) = [Path(line) for line in made.stdout.split()]
        image.unlink()  # the file is gone, although the manifest says "done"
        recovered = subprocess.run(  # no --base-url: the run folder remembers the server
            _cli("recover", str(out)), env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        submits = emu.submit_count
    assert recovered.returncode == 0, recovered.stderr
    assert [Path(line) for line in recovered.stdout.split()] == [image]
    assert image.exists()
    assert submits == 1
    assert "api_key" not in (out / MANIFEST).read_text()


def test_a_real_full_disk_as_root(tmp_path: Path) -> None:
    """A 600 kB tmpfs (needs root and the right to mount; skipped otherwise)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)],
                          capture_output=True, check=False)  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        with Emulator(workers=2, seconds_per_step=0.002) as emu:
            env = {**os.environ, "FAL_KEY": emu.api_key}
            command = _cli("sweep", "a fox", "--image-size", "512x512", "--steps", "2",
                           "--axis", "seed=1-12", "--yes", "--quiet", "--out", str(mount / "s"),
                           "--base-url", emu.url, "--format", "png")  # fmt: skip
            full = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
            assert "Traceback" not in full.stderr
            assert full.returncode != 0
            lines = (mount / "s" / "journal.jsonl").read_bytes().split(b"\n")
            for line in lines[:-1]:
                json.loads(line)  # every line whole
            for name in _images(mount / "s"):
                assert read_metadata(mount / "s" / name) is not None  # complete, or not there
    finally:
        subprocess.run(["umount", str(mount)], check=False)
