"""The quickstart notebook in a real browser: JupyterLab 4 and the Notebook 7 interface.

Run all cells, set a slider on the panel, click Generate, and wait for the images to appear in
the panel's grid — on the emulator, since the server runs without a key.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

    from .conftest import Flavour, JupyterServer, JupyterServerFactory

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

NUM_IMAGES = 2
KERNEL_TIMEOUT_MS = 60_000
GENERATE_TIMEOUT_MS = 60_000

PANEL = ".fluxwidget-panel"
GRID_IMAGES = f"{PANEL} .fluxwidget-grid img.widget-image"

URL_PATHS: dict[Flavour, str] = {
    "lab": "/lab/tree/quickstart.ipynb",
    "notebook": "/notebooks/quickstart.ipynb",
}

JS_KERNEL_STATUS = """() => {
    const app = window.jupyterapp;
    const widget = app && app.shell && app.shell.currentWidget;
    const context = widget && widget.sessionContext;
    const kernel = context && context.session && context.session.kernel;
    return kernel ? kernel.status : null;
}"""


def wait_for_idle_kernel(page: Page, timeout_ms: int = KERNEL_TIMEOUT_MS) -> None:
    page.wait_for_function(f"() => ({JS_KERNEL_STATUS})() === 'idle'", timeout=timeout_ms)


def run_all_cells(page: Page) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


def set_slider(panel: Locator, label: str, value: int) -> None:
    """Set an ipywidgets slider the way a person would: type into its editable readout."""
    slider = panel.locator(".widget-slider").filter(
        has=panel.page.locator(".widget-label", has_text=label)
    )
    readout = slider.first.locator(".widget-readout")
    readout.click()
    readout.press("Control+a")
    readout.type(str(value))
    readout.press("Enter")
    # The readout shows the value the model accepted (it is reset on an invalid entry).
    readout.page.wait_for_function(
        "([el, v]) => el.textContent.trim() === v",
        arg=[readout.element_handle(), str(value)],
        timeout=5_000,
    )


def open_and_generate(
    page: Page,
    server: JupyterServer,
    flavour: Flavour,
    artifacts_dir: Path,
) -> Path:
    """Open the quickstart, run it, generate NUM_IMAGES images; return the screenshot path."""
    started = time.monotonic()
    page.goto(server.url + URL_PATHS[flavour], wait_until="domcontentloaded")
    wait_for_idle_kernel(page)
    run_all_cells(page)

    panel = page.locator(PANEL).first
    panel.wait_for(state="visible", timeout=KERNEL_TIMEOUT_MS)
    # Cells after the panel may still run; wait until the kernel is idle again.
    wait_for_idle_kernel(page)

    set_slider(panel, "num_images", NUM_IMAGES)
    generate = panel.locator("button.jupyter-button", has_text="Generate").first
    generate.click()

    images = page.locator(GRID_IMAGES)
    page.wait_for_function(
        "([sel, n]) => { const imgs = document.querySelectorAll(sel);"
        " return imgs.length >= n && [...imgs].every(i => i.complete && i.naturalWidth > 0); }",
        arg=[GRID_IMAGES, NUM_IMAGES],
        timeout=GENERATE_TIMEOUT_MS,
    )
    assert images.count() == NUM_IMAGES

    panel.scroll_into_view_if_needed()
    full = artifacts_dir / f"{flavour}-page.png"
    page.screenshot(path=str(full), full_page=False)
    shot = artifacts_dir / f"{flavour}-panel.png"
    panel.screenshot(path=str(shot))
    elapsed = time.monotonic() - started
    print(f"{flavour}: {NUM_IMAGES} images after {elapsed:.1f} s; screenshots in {full.parent}")
    return shot


@pytest.mark.parametrize("flavour", ["lab", "notebook"])
def test_quickstart_generates_in_browser(
    flavour: Flavour,
    page: Page,
    notebook_root: Path,
    jupyter_factory: JupyterServerFactory,
    artifacts_dir: Path,
) -> None:
    server = jupyter_factory(flavour, notebook_root)
    try:
        shot = open_and_generate(page, server, flavour, artifacts_dir)
    except Exception:
        page.screenshot(path=str(artifacts_dir / f"{flavour}-failure.png"))
        print(server.log_tail())
        raise
    if flavour == "lab":
        # The README shows the panel with its results, made by this test.
        shutil.copy(shot, REPO_ROOT / "docs" / "screenshot-panel.png")
