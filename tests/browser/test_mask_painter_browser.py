"""The inpainting mask painter in real JupyterLab (and Notebook 7) at 1280×900: a panel in
inpaint mode, a mouse stroke over the mask canvas, and the kernel's mask file (the image's full
size) white where the stroke went. Screenshots go to ``artifacts/browser/<flavour>-mask-painter
(-top).png``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import pytest
from PIL import Image

from .test_panel_browser import KERNEL_TIMEOUT_MS, VIEWPORT, run_all_cells, wait_for_idle_kernel

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from .conftest import Flavour, JupyterServerFactory

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

IMAGE_SIZE = (800, 600)

SETUP = f"""
from PIL import Image, ImageDraw
photo = Image.new("RGB", {IMAGE_SIZE!r}, "teal")
ImageDraw.Draw(photo).ellipse((250, 150, 550, 450), fill="orange")
photo.save("photo.png")

from fluxwidget.ui import FluxPanel
panel = FluxPanel(runs_root="runs")
panel.set(prompt="a red hat on the orange ball", image_url="photo.png")
panel.input_mode = "inpainting"
panel
"""


def masks(root: Path) -> list[Path]:
    return sorted((root / "runs").glob("*/inputs/mask-*.png"))


@pytest.mark.parametrize("flavour", ["lab", "notebook"])
def test_a_stroke_over_the_canvas_paints_the_full_size_mask(
    flavour: Flavour,
    page: Page,
    tmp_path: Path,
    jupyter_factory: JupyterServerFactory,
    artifacts_dir: Path,
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    notebook = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        }
    )
    notebook.cells = [nbformat.v4.new_code_cell(SETUP)]
    nbformat.write(notebook, root / "inpaint.ipynb")
    server = jupyter_factory(flavour, root)
    name = f"{flavour}-mask-painter"
    try:
        page.set_viewport_size(VIEWPORT)
        path = "/lab/tree/inpaint.ipynb" if flavour == "lab" else "/notebooks/inpaint.ipynb"
        page.goto(server.url + path, wait_until="domcontentloaded")
        wait_for_idle_kernel(page)
        run_all_cells(page)
        canvas = page.locator(".fw-mask-canvas").first
        canvas.wait_for(timeout=KERNEL_TIMEOUT_MS)
        wait_for_idle_kernel(page)
        page.wait_for_function(
            "() => { const c = document.querySelector('.fw-mask-canvas');"
            " return c && c.width > 0 && c.getBoundingClientRect().height > 0; }"
        )
        page.screenshot(path=str(artifacts_dir / f"{name}-top.png"))
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        assert box is not None
        # a horizontal stroke across the middle, from 20 % to 80 % of the width
        y = box["y"] + box["height"] * 0.5
        page.mouse.move(box["x"] + box["width"] * 0.2, y)
        page.mouse.down()
        for step in range(1, 13):
            page.mouse.move(box["x"] + box["width"] * (0.2 + 0.05 * step), y)
        page.mouse.up()

        deadline = time.monotonic() + 30
        while not masks(root) and time.monotonic() < deadline:
            time.sleep(0.2)
        found = masks(root)
        assert found, "the kernel wrote no mask file"
        with Image.open(found[-1]) as mask:
            assert mask.size == IMAGE_SIZE  # the image's full size, not the canvas's
            width, height = IMAGE_SIZE
            assert mask.getpixel((width // 2, height // 2)) == 255  # on the stroke
            assert mask.getpixel((int(width * 0.3), height // 2)) == 255
            assert mask.getpixel((width // 2, 10)) == 0  # far from it
            assert mask.getpixel((10, height - 10)) == 0
        # the canvas shows the kernel's preview (red where painted)
        page.wait_for_timeout(500)
        painted = page.evaluate(
            "() => { const c = document.querySelector('.fw-mask-canvas');"
            " const d = c.getContext('2d').getImageData(c.width / 2, c.height / 2, 1, 1).data;"
            " return [d[0], d[3]]; }"
        )
        assert painted[0] == 255
        assert painted[1] > 0
        # the mask is the panel's mask_url: shown in the mask field
        field = page.locator("input[placeholder='path or https:// URL']").nth(1)
        assert "mask-" in field.input_value()
        page.screenshot(path=str(artifacts_dir / f"{name}.png"))
    except Exception:
        page.screenshot(path=str(artifacts_dir / f"{name}-failure.png"))
        print(server.log_tail())
        raise
