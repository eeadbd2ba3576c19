"""A sweep's live view on real widgets and a real emulator: cells fill in, light saved state,
controls, "Open in panel"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import comm
import ipywidgets as widgets
import pytest

from fluxwidget import FluxClient, sweep
from fluxwidget.emulator import Emulator
from fluxwidget.ui.sweep_view import SweepView, cell_info

from .test_ui_components import CountingComm

LORA = "https://example.org/style.safetensors"


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int, int]]]:
    CountingComm.sent = []
    monkeypatch.setattr(comm, "create_comm", CountingComm)
    return CountingComm.sent


@pytest.fixture
def fast() -> Iterator[Emulator]:
    with Emulator(workers=8, seconds_per_step=0.002, keepalive_interval=0.2) as emulator:
        yield emulator


def _models(view: SweepView) -> set[str]:
    """Every widget model the view's tree holds (children, layouts, styles, the grid)."""
    state = widgets.Widget.get_manager_state(drop_defaults=True, widgets=[view.widget])
    return set(state["state"])


async def test_a_sweep_grid_fills_in_and_stays_light(
    fast: Emulator, tmp_path: Path, counted: list[tuple[str, int, int]]
) -> None:
    run = sweep(
        {"prompt": "a fox", "image_size": "square", "loras": [{"path": LORA, "scale": 1.0}]},
        "loras[0].scale=0.4-1.2 [3]",
        "guidance_scale=2,3.5,5",
        seed=3,
        client=FluxClient(api_key=fast.api_key, base_url=fast.url),
        out=tmp_path / "fox",
        export=False,
    )
    run.view()
    view: SweepView = run._view
    view.grid._received(view.grid, {"kind": "hello", "have": []}, [])  # a browser shows it
    await run
    await run.runner.client.aclose()  # type: ignore[attr-defined]
    grid = view.grid
    assert grid.entry_count == 9
    for cell in run.plan.cells:
        entry = grid.entry(cell.id)
        assert entry["state"] == "done"
        assert entry["thumb"] >= 0
        assert (entry["x"], entry["y"]) == cell.coords[:2]
        assert entry["info"]["loras[0].scale"] == entry["info"]["loras[0].scale"]
        assert entry["info"]["seed"] == "3"
    assert grid.axes["x_label"] == "loras[0].scale"
    assert grid.axes["x_values"] == ["0.4", "0.8", "1.2"]
    assert grid.axes["y_values"] == ["2", "3.5", "5"]
    assert "Done" not in view.status.value or "9/9" in view.status.value
    assert "9/9 done" in run.status
    assert len(_models(view)) <= 16  # the grid is one model; status, buttons and boxes share
    saved = len(json.dumps(widgets.Widget.get_manager_state(widgets=[grid])))
    assert saved / 9 <= 25_000
    thumbs = sum(len(t) for t in grid.thumbs)
    sent_buffers = sum(buffers for _kind, _size, buffers in counted)
    sent_json = sum(size for _kind, size, _buffers in counted)
    print(f"thumbnails {thumbs} B; sent: buffers {sent_buffers} B, JSON {sent_json} B")
    assert sent_buffers <= 1.2 * thumbs  # each thumbnail once (WebP: small)
    assert sent_json <= 90_000  # the components' code once, then small state messages
    assert view.buttons["Cancel all"].disabled
    assert view.buttons["Retry failed"].disabled


async def test_open_in_panel_restores_the_cells_input_with_its_seed(
    fast: Emulator, tmp_path: Path
) -> None:
    opened: list[dict[str, Any]] = []
    run = sweep(
        "a fox",
        "guidance_scale=2,5",
        image_size="square",
        seed=2**63 + 5,
        client=FluxClient(api_key=fast.api_key, base_url=fast.url),
        out=tmp_path / "open",
        export=False,
    )
    view = SweepView(run, opener=opened.append)
    await run
    view._open(run.plan.cells[1].id)
    assert opened[0]["guidance_scale"] == 5
    assert opened[0]["seed"] == 2**63 + 5
    info = cell_info(run.runner.records[run.plan.cells[1].id])
    assert info["seed"] == str(2**63 + 5)  # 64-bit seeds stay exact as text


async def test_an_unconfirmed_sweep_shows_its_cost_and_a_confirm_button(
    fast: Emulator, tmp_path: Path
) -> None:
    from fluxwidget.sweeps import UnitPrice

    run = sweep(
        "a fox",
        "guidance_scale=1-12",
        client=FluxClient(api_key=fast.api_key, base_url=fast.url),
        out=tmp_path / "big",
        price=UnitPrice(1.0, "megapixel", "test"),
        export=False,
    )
    view = SweepView(run)
    with pytest.raises(ValueError, match="above"):
        await run
    assert not view.buttons["Confirm and start"].disabled
    assert "$" in view.status.value
    assert fast.submit_count == 0
    view.buttons["Confirm and start"].click()
    await run
    assert run.progress().done == 12
    assert fast.submit_count == 12


async def test_the_panels_sweep_form_plans_prices_and_runs(fast: Emulator, tmp_path: Path) -> None:
    from fluxwidget.schema import FluxLoraInput
    from fluxwidget.ui.sweep_form import SweepForm

    client = FluxClient(api_key=fast.api_key, base_url=fast.url)
    params = FluxLoraInput(
        prompt="a tiger eye", image_size="square", loras=[{"path": LORA, "scale": 1.0}]
    )
    form = SweepForm(lambda: params, lambda: client)
    assert "loras[0].scale" in form.fields[0].options
    assert form.start_button.disabled  # no axis yet
    form.fields[0].value = "loras[0].scale"
    form.values[0].value = "0.5-1.5 [3]"
    form.fields[1].value = "guidance_scale"
    form.values[1].value = "2,99"
    assert form.start_button.disabled
    assert "guidance_scale=99" in form.summary.value
    form.values[1].value = "2,5"
    assert not form.start_button.disabled
    assert "6 cells (3 × 2 × 1)" in form.summary.value
    assert "estimate" in form.summary.value
    run = form.start()
    assert run is not None
    await run
    assert run.progress().done == 6
    assert form.output.children[0].children[-1].entry_count == 6
    await client.aclose()


async def test_the_panel_saves_every_image_and_hosts_the_sweep_form(
    fast: Emulator, tmp_path: Path
) -> None:
    from fluxwidget.images import read_metadata
    from fluxwidget.ui import FluxPanel

    client = FluxClient(api_key=fast.api_key, base_url=fast.url)
    panel = FluxPanel(client, runs_root=tmp_path / "runs")
    panel.set(prompt="a tiger eye", image_size="square", num_images=2, seed=9)
    await panel.generate()
    folder = panel.runs_folder
    assert folder is not None
    assert folder.path.parent == tmp_path / "runs"
    (job,) = folder.records()
    assert job.state == "done"
    for image in job.images:
        embedded = read_metadata(folder.path / image.file)
        assert embedded is not None
        assert embedded["seed"] == 9
        assert embedded["request_id"] == job.request_id
    assert panel.sweep_form is None  # built when the tab opens: the empty panel stays light
    panel.tabs.selected_index = 1
    form = panel.sweep_form
    assert form is not None
    assert panel.sweep_tab.children == (form.widget,)
    form.fields[0].value = "seed"
    form.values[0].value = "1-3"
    run = form.start()
    assert run is not None
    await run
    assert run.progress().done == 3
    view_grid = form.output.children[0].children[-1]
    cell = run.plan.cells[2]
    view_grid._open(cell.id)  # "Open in panel" from the grid
    assert panel.tabs.selected_index == 0
    assert panel.params.seed == 3
    panel.close()
    await client.aclose()
