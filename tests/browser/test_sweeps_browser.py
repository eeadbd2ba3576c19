"""sweeps.ipynb in real JupyterLab: Run All, and every sweep grid fills in with its thumbnails.

On the emulator (the server runs without a key). The grids are anywidget components, so this
proves their JavaScript renders the labelled cells and the thumbnails sent as binary buffers.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .conftest import NOTEBOOKS_DIR
from .test_panel_browser import KERNEL_TIMEOUT_MS, run_all_cells, wait_for_idle_kernel

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from .conftest import JupyterServerFactory

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

GRID = ".fw-sweep"
THUMBS = f"{GRID} img.fw-cell-img"
SWEEP_CELLS = (9, 3, 9)  # the 3 x 3 grid, the Prompt S/R row, the same 3 x 3 grid resumed


def test_sweeps_notebook_fills_its_grids_in_jupyterlab(
    page: Page,
    tmp_path: Path,
    jupyter_factory: JupyterServerFactory,
    artifacts_dir: Path,
) -> None:
    from playwright.sync_api import expect

    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOKS_DIR / "sweeps.ipynb", root / "sweeps.ipynb")
    server = jupyter_factory("lab", root)
    try:
        page.goto(server.url + "/lab/tree/sweeps.ipynb", wait_until="domcontentloaded")
        wait_for_idle_kernel(page)
        run_all_cells(page)
        grids = page.locator(GRID)
        expect(grids).to_have_count(len(SWEEP_CELLS), timeout=KERNEL_TIMEOUT_MS)
        for index, cells in enumerate(SWEEP_CELLS):
            thumbs = grids.nth(index).locator("img.fw-cell-img")
            expect(thumbs).to_have_count(cells, timeout=KERNEL_TIMEOUT_MS)
        wait_for_idle_kernel(page)
        images = page.locator(THUMBS)
        page.wait_for_function(
            "(imgs) => imgs.every((img) => img.complete && img.naturalWidth > 0)",
            arg=images.element_handles(),
            timeout=10_000,
        )
        first = grids.first
        expect(first.locator(".fw-xlabel")).to_have_text(["0.4", "0.8", "1.2"])
        expect(first.locator(".fw-ylabel")).to_have_text(["2", "3.5", "5"])
        expect(first.locator(".fw-cell.fw-done")).to_have_count(9)
        expect(grids.nth(1).locator(".fw-xlabel")).to_have_text(["tiger", "lion", "snow owl"])
        # the exported grid image, shown from the run folder, loaded as well
        exported = page.locator(".jp-RenderedImage img")
        expect(exported).to_have_count(1)
        first.scroll_into_view_if_needed()
        first.screenshot(path=str(artifacts_dir / "lab-sweeps-notebook-grid.png"))
    except Exception:
        page.screenshot(path=str(artifacts_dir / "lab-sweeps-failure.png"))
        print(server.log_tail())
        raise
    assert (root / "fluxwidget-runs" / "fox-grid" / "grid.jpg").exists()
