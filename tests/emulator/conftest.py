"""Fixtures of the emulator's own tests: one fast emulator per module, spoken to with raw httpx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from fluxwidget.emulator import Emulator


@pytest.fixture(scope="module")
def emu_module() -> Iterator[Emulator]:
    with Emulator(workers=4, seconds_per_step=0.002) as emu:
        yield emu


@pytest.fixture
def emu(emu_module: Emulator) -> Iterator[Emulator]:
    """The module's emulator, with no fault left over from another test."""
    emu_module.clear_faults()
    yield emu_module
    emu_module.clear_faults()


@pytest.fixture
def http(emu: Emulator) -> Iterator[httpx.Client]:
    """A plain httpx client carrying the emulator's key."""
    headers = {"Authorization": f"Key {emu.api_key}"}
    with httpx.Client(base_url=emu.url, headers=headers, timeout=10) as client:
        yield client
