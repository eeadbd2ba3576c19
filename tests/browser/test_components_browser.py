"""The SweepGrid component in real JupyterLab: labels, live cell states, thumbnails sent as
custom messages, the details of a cell and "Open in panel" calling back into Python."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import pytest

from .test_panel_browser import KERNEL_TIMEOUT_MS, VIEWPORT, run_all_cells, wait_for_idle_kernel

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from .conftest import JupyterServerFactory

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

SETUP = """
import io
from PIL import Image
from fluxwidget.ui import SweepGrid

def thumb(colour):
    out = io.BytesIO()
    Image.new("RGB", (128, 96), colour).save(out, "JPEG")
    return out.getvalue()

grid = SweepGrid(
    "guidance_scale", ["2", "3.5", "5"], "loras[0].scale", ["0.5", "1"],
    legend={"prompt": "a tiger eye", "seed": "5361202149059313751"},
)
grid.on_open(lambda cell: setattr(grid, "legend", {**grid.legend, "opened": cell}))
# filled at once, in the same cell: these messages may reach the browser before the component
# has loaded there (its "hello" asks for anything lost)
grid.set_cell_state("c0", (0, 0, 0), "queued", "queued #1")
grid.set_cell_image("c0", thumb("red"), {"seed": "5361202149059313751", "request_id": "req-0"})
grid
"""

FILL = """
colours = ["red", "green", "blue", "orange", "purple", "grey"]
for n in range(6):
    x, y = n % 3, n // 3
    grid.set_cell_state(f"c{n}", (x, y, 0), "queued", f"queued #{n + 1}")
for n in range(1, 5):
    x, y = n % 3, n // 3
    grid.set_cell_state(f"c{n}", (x, y, 0), "done", "done")
    grid.set_cell_image(
        f"c{n}", thumb(colours[n]),
        {"seed": "5361202149059313751", "request_id": f"req-{n}", "guidance_scale": str(x)},
    )
grid.set_cell_state("c5", (2, 1, 0), "running", "running 3/28")
grid.finish()
"""


def test_sweep_grid_renders_live_and_opens_a_cell(
    page: Page, tmp_path: Path, jupyter_factory: JupyterServerFactory, artifacts_dir: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    notebook = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        }
    )
    notebook.cells = [nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell(FILL)]
    nbformat.write(notebook, root / "grid.ipynb")
    server = jupyter_factory("lab", root)
    try:
        page.set_viewport_size(VIEWPORT)
        page.goto(server.url + "/lab/tree/grid.ipynb", wait_until="domcontentloaded")
        wait_for_idle_kernel(page)
        run_all_cells(page)
        grid = page.locator(".fw-sweep").first
        grid.wait_for(timeout=KERNEL_TIMEOUT_MS)
        wait_for_idle_kernel(page)
        from playwright.sync_api import expect

        expect(grid.locator(".fw-cell img")).to_have_count(5)
        assert grid.locator(".fw-xlabel").all_inner_texts() == ["2", "3.5", "5"]
        assert grid.locator(".fw-ylabel").all_inner_texts() == ["0.5", "1"]
        assert "loras[0].scale" in grid.locator(".fw-corner").inner_text()
        assert "5361202149059313751" in grid.locator(".fw-legend").inner_text()
        running = grid.locator(".fw-cell.fw-running")
        assert "running 3/28" in running.inner_text()

        grid.locator(".fw-cell[data-id='c4']").click()
        details = grid.locator(".fw-details.fw-open")
        details.wait_for()
        assert "req-4" in details.inner_text()
        assert "5361202149059313751" in details.inner_text()
        details.locator("button", has_text="Open in panel").click()
        expect(grid.locator(".fw-legend")).to_contain_text("opened = c4", timeout=10_000)
        page.screenshot(path=str(artifacts_dir / "lab-sweep-grid.png"))
    except Exception:
        page.screenshot(path=str(artifacts_dir / "lab-sweep-grid-failure.png"))
        print(server.log_tail())
        raise
