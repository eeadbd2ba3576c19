"""Shared fixtures: an isolated environment and a real emulator on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fluxwidget.emulator import Emulator

_ENV = (
    "FAL_KEY",
    "FAL_KEY_ID",
    "FAL_KEY_SECRET",
    "FLUXWIDGET_BASE_URL",
    "FLUXWIDGET_AUTH_SCHEME",
    "FLUXWIDGET_ENDPOINT",
    "FLUXWIDGET_URL_MODE",
    "FLUXWIDGET_STORAGE_URL",
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No key or configuration leaks in from the developer's shell; a private journal and
    runs folder and upload cache (nothing is written into the working tree or the home folder)."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    journal = tmp_path / "journal.jsonl"
    monkeypatch.setenv("FLUXWIDGET_JOURNAL", str(journal))
    monkeypatch.setenv("FLUXWIDGET_RUNS", str(tmp_path / "fluxwidget-runs"))
    monkeypatch.setenv("FLUXWIDGET_UPLOAD_CACHE", str(tmp_path / "upload-cache.json"))
    return journal


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """A fast emulator (28 steps ≈ 0.15 s) with two workers, fresh for each test."""
    with Emulator(workers=2, seconds_per_step=0.005, keepalive_interval=0.2) as emulator:
        yield emulator
