"""The request journal: durable, tolerant of a torn last line, and it knows what is pending."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest

from fluxwidget.client.journal import Journal, default_journal_path


def test_pending_lists_jobs_without_a_terminal_event(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    journal.append("submitted", "a", input={"prompt": "x"})
    journal.append("submitted", "b")
    journal.append("cancel_requested", "b")
    journal.append("submitted", "c")
    journal.append("completed", "a")
    journal.append("failed", "c", error="boom")
    assert [r["request_id"] for r in journal.pending()] == ["b"]


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    journal.append("submitted", "a")
    with journal.path.open("a") as fh:
        fh.write('{"event": "completed", "requ')
    assert [r["request_id"] for r in journal.pending()] == ["a"]


def test_default_path_follows_the_environment(isolated_env: Path) -> None:
    assert default_journal_path() == isolated_env


async def test_concurrent_durable_writes_share_fsyncs_and_keep_their_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    journal = Journal(tmp_path / "j.jsonl")

    async def submitted(index: int) -> None:
        await journal.write("submitted", f"r{index}")
        # durable when it returns: the line is in the file already
        assert f'"r{index}"' in journal.path.read_text()

    await asyncio.gather(*(submitted(i) for i in range(64)))
    ids = [r["request_id"] for r in journal.records()]
    assert sorted(ids) == sorted(f"r{i}" for i in range(64))
    assert len(fsyncs) < 64  # group commit: the writes waiting together shared an fsync
    # one task's events keep their order
    for i in range(5):
        await journal.write("status", "ordered", n=i)
    assert [r["n"] for r in journal.records() if r["request_id"] == "ordered"] == list(range(5))


async def test_a_cancelled_waiter_leaves_the_writer_working(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    waiter = asyncio.ensure_future(journal.write("submitting", "", job_id="cell-1"))
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    await journal.write("submitted", "after")
    journal.append("completed", "after")
    events = [r["event"] for r in journal.records()]
    assert events[-2:] == ["submitted", "completed"]


async def test_a_write_that_fails_raises_to_its_waiter(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    journal = Journal(blocker / "j.jsonl")  # its folder cannot be created
    with pytest.raises((FileExistsError, NotADirectoryError)):
        await journal.write("submitted", "x")
    with pytest.raises((FileExistsError, NotADirectoryError)):
        journal.append("submitted", "x")
    journal.append_soon("completed", "x")  # nobody to raise to: logged, and the writer goes on
    Journal.flush()
    good = Journal(tmp_path / "good.jsonl")
    await good.write("submitted", "y")
    assert [r["request_id"] for r in good.records()] == ["y"]


async def test_any_write_failure_reaches_its_waiter_and_the_writer_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = Journal(tmp_path / "broken.jsonl")

    def fail(lines: list[str]) -> None:
        raise ValueError("not an OSError")

    monkeypatch.setattr(broken, "_write_lines", fail)
    with pytest.raises(ValueError, match="not an OSError"):
        await broken.write("submitted", "x")
    good = Journal(tmp_path / "good.jsonl")
    await good.write("submitted", "y")  # the writer thread survived: no hang
    assert [r["request_id"] for r in good.records()] == ["y"]
