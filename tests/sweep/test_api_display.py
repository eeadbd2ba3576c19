"""`sweep()` in a kernel: the live grid is shown once, whether the run is displayed or awaited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import fluxwidget.ui.sweep as live
from fluxwidget import FluxClient, sweep
from fluxwidget.emulator import Emulator


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Pretend to be in a kernel and record what `await run` displays."""
    displayed: list[Any] = []
    monkeypatch.setattr(live, "_in_kernel", lambda: True)
    monkeypatch.setattr(live, "display", lambda obj: displayed.append(obj))
    return displayed


async def test_awaiting_shows_the_live_grid_once(
    emu: Emulator, tmp_path: Path, shown: list[Any]
) -> None:
    async with FluxClient(api_key=emu.api_key, base_url=emu.url) as client:
        run = sweep("a fox", "guidance_scale=2,5", client=client, out=tmp_path / "a", export=False)
        await run
        await run
    assert shown == [run]
    assert run.progress().done == 2


async def test_a_run_displayed_first_is_not_shown_again_when_awaited(
    emu: Emulator, tmp_path: Path, shown: list[Any]
) -> None:
    async with FluxClient(api_key=emu.api_key, base_url=emu.url) as client:
        run = sweep("a fox", "guidance_scale=2,5", client=client, out=tmp_path / "b", export=False)
        bundle = run._repr_mimebundle_()  # what a cell ending in `run` does
        await run
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert shown == []
    assert run.progress().done == 2
