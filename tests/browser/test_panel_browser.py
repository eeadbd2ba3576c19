"""The quickstart notebook in a real browser: JupyterLab 4 and the Notebook 7 interface.

Run all cells, set a slider on the panel, click Generate, and wait for the images to appear in
the panel's grid — on the emulator, since the server runs without a key.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

    from .conftest import Flavour, JupyterServer, JupyterServerFactory

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

NUM_IMAGES = 2
SEED = 7  # a fixed seed makes the placeholder images, and so the screenshot, repeatable
SCREENSHOT_CHANGE = 0.002  # rewrite docs/screenshot-panel.png when more of it than this changed
KERNEL_TIMEOUT_MS = 60_000
GENERATE_TIMEOUT_MS = 60_000

# The panel is the output holding the Generate button; its image grid is the only GridBox in it
# with images (the full-size viewer is a VBox and stays hidden).
GENERATE_BUTTON = "button.jupyter-button:has-text('Generate')"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PANEL = f".jp-OutputArea-output:has({GENERATE_BUTTON})"
GRID_IMAGES = ".widget-gridbox img.widget-image"

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


def set_seed(panel: Locator, seed: int) -> None:
    """Untick "random" and type a seed into the Seed field."""
    random = panel.locator(".widget-checkbox", has_text="random").first.locator("input")
    if random.is_checked():
        random.uncheck()
    field = panel.locator(".widget-text").filter(
        has=panel.page.locator(".widget-label", has_text="Seed")
    )
    box = field.first.locator("input")
    expect_enabled(box)
    box.fill(str(seed))
    box.press("Enter")


def expect_enabled(locator: Locator) -> None:
    from playwright.sync_api import expect

    expect(locator).to_be_enabled(timeout=5_000)


def update_if_changed(new: Path, committed: Path, threshold: float = SCREENSHOT_CHANGE) -> bool:
    """Copy ``new`` over ``committed`` unless they differ in under ``threshold`` of the pixels
    (the status line's timing changes on every run; the images with a fixed seed do not)."""
    from PIL import Image, ImageChops

    if committed.exists():
        with Image.open(new) as a, Image.open(committed) as b:
            if a.size == b.size:
                diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).convert("L")
                changed = sum(diff.point(lambda v: 255 if v > 16 else 0).histogram()[255:])
                if changed / (a.size[0] * a.size[1]) < threshold:
                    return False
    shutil.copy(new, committed)
    return True


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

    set_slider(panel, "Images", NUM_IMAGES)
    set_seed(panel, SEED)
    generate = panel.locator(GENERATE_BUTTON).first
    # Generate is enabled once the form is valid (the quickstart's defaults are).
    page.wait_for_function("(el) => !el.disabled", arg=generate.element_handle(), timeout=10_000)
    generate.click()

    from playwright.sync_api import expect

    images = panel.locator(GRID_IMAGES)
    expect(images).to_have_count(NUM_IMAGES, timeout=GENERATE_TIMEOUT_MS)
    page.wait_for_function(
        "(imgs) => imgs.every((img) => img.complete && img.naturalWidth > 0)",
        arg=images.element_handles(),
        timeout=10_000,
    )
    sizes = images.evaluate_all(
        "(imgs) => imgs.map((img) => [img.naturalWidth, img.naturalHeight])"
    )
    assert all(width > 0 and height > 0 for width, height in sizes), sizes

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
    # The README shows the panel with its results, made by this test in JupyterLab.
    if flavour == "lab" and update_if_changed(shot, REPO_ROOT / "docs" / "screenshot-panel.png"):
        print("docs/screenshot-panel.png updated")


def test_key_typed_in_the_browser_never_reaches_the_saved_notebook(
    page: Page,
    notebook_root: Path,
    jupyter_factory: JupyterServerFactory,
    artifacts_dir: Path,
) -> None:
    """Paste a key into the panel's key field, then save the notebook with JupyterLab's "save
    widget state" on: the key is gone from the page and absent from the file on disk."""
    fake_key = "browser-test-key-id:browser-test-key-secret-7c1e"
    server = jupyter_factory("lab", notebook_root, save_widget_state=True)
    try:
        page.goto(server.url + URL_PATHS["lab"], wait_until="domcontentloaded")
        wait_for_idle_kernel(page)
        run_all_cells(page)
        panel = page.locator(PANEL).first
        panel.wait_for(state="visible", timeout=KERNEL_TIMEOUT_MS)
        wait_for_idle_kernel(page)

        field = panel.locator("input[type=password]").first
        field.fill(fake_key)
        field.press("Enter")
        panel.get_by_text("Key set").first.wait_for(timeout=10_000)
        assert field.input_value() == ""
        assert "browser-test-key-secret" not in page.content()

        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        saved = notebook_root / "quickstart.ipynb"
        page.wait_for_function(
            "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=10_000
        )
        text = saved.read_text()
        assert "browser-test-key-secret" not in text
        state = json.loads(text)["metadata"]["widgets"][WIDGET_STATE]["state"]
        passwords = [m["state"] for m in state.values() if m["model_name"] == "PasswordModel"]
        assert passwords, "the key field's state was not saved, so this proves nothing"
        assert all(p.get("value", "") == "" for p in passwords)
    except Exception:
        page.screenshot(path=str(artifacts_dir / "lab-key-failure.png"))
        print(server.log_tail())
        raise
