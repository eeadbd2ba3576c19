"""The request journal: durable, tolerant of a torn last line, and it knows what is pending."""

from __future__ import annotations

from pathlib import Path

from fluxwidget.journal import Journal, default_journal_path


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
