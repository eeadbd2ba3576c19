"""The quickstart notebook in a real browser: JupyterLab 4 and the Notebook 7 interface.

Run all cells, set the form, click Generate, and wait for the images to appear in the panel's
gallery — on the emulator, since the server runs without a key. At 1280×900: the first result
is in the viewport beside the form, a 19-digit seed survives restore exactly, the compare view
works, and a notebook saved with widget state (or executed headless) reopens with its images.
Screenshots go to ``artifacts/browser/``; ``make screenshots`` refreshes the README's picture.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

try:  # tests/ is on sys.path in pytest's default import mode; a package layout also works
    from notebook_exec import execute_notebook, write_panel_notebook
except ImportError:  # pragma: no cover
    from tests.notebook_exec import execute_notebook, write_panel_notebook

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

    from .conftest import Flavour, JupyterServer, JupyterServerFactory

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

NUM_IMAGES = 2
SEED = 7  # a fixed seed makes the placeholder images, and so the screenshot, repeatable
BIG_SEED = "5361202149059313751"  # 19 digits: not exact as a JavaScript number
SCREENSHOT_CHANGE = 0.002  # rewrite docs/screenshot-panel.png when more of it than this changed
KERNEL_TIMEOUT_MS = 60_000
GENERATE_TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1280, "height": 900}

# The panel is the output holding the Generate button; its results are the gallery component.
GENERATE_BUTTON = "button.jupyter-button:has-text('Generate')"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PANEL = f".jp-OutputArea-output:has({GENERATE_BUTTON})"
GALLERY_IMAGES = ".fw-gallery img.fw-thumb"
UPDATE_SCREENSHOTS = "FLUXWIDGET_UPDATE_SCREENSHOTS"
HEADLESS_NOTEBOOK = "panel-headless.ipynb"

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


def run_command(page: Page, command: str) -> None:
    """Start a JupyterLab command without waiting on its promise.

    The callers wait for what the command does (a panel shown, a model saved). Returning the
    command's promise from ``page.evaluate`` made Playwright wait on it, and a promise JupyterLab
    drops without settling (run-all while cells still run) fails the call with "Resulting promise
    was garbage collected" (seen once in CI).
    """
    page.evaluate("(name) => { void window.jupyterapp.commands.execute(name); }", command)


def run_all_cells(page: Page) -> None:
    run_command(page, "notebook:run-all-cells")


def field_row(panel: Locator, label: str) -> Locator:
    """The form row (an HBox) whose label reads `label`."""
    return (
        panel.locator(".widget-hbox")
        .filter(has=panel.page.locator(".widget-label", has_text=label))
        .last
    )


def set_number(panel: Locator, label: str, value: int) -> None:
    """Type a number into the text box beside a slider, as a person would."""
    box = field_row(panel, label).locator("input[type=number]").first
    box.fill(str(value))
    box.press("Enter")


def seed_box(panel: Locator) -> Locator:
    return field_row(panel, "Seed").locator("input[type=text]").first


def set_seed(panel: Locator, seed: int | str) -> None:
    """Type a seed (text: 64-bit seeds stay exact) into the Seed field."""
    box = seed_box(panel)
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


def open_panel(page: Page, server: JupyterServer, flavour: Flavour) -> Locator:
    """Open the quickstart, run all cells, and return the panel once the kernel is idle."""
    page.set_viewport_size(VIEWPORT)
    page.goto(server.url + URL_PATHS[flavour], wait_until="domcontentloaded")
    wait_for_idle_kernel(page)
    run_all_cells(page)
    panel = page.locator(PANEL).first
    panel.wait_for(state="visible", timeout=KERNEL_TIMEOUT_MS)
    # Cells after the panel may still run; wait until the kernel is idle again.
    wait_for_idle_kernel(page)
    return panel


def generate(panel: Locator, count: int) -> Locator:
    """Click Generate and wait until `count` thumbnails are loaded; returns the thumbnails."""
    from playwright.sync_api import expect

    page = panel.page
    button = panel.locator(GENERATE_BUTTON).first
    page.wait_for_function("(el) => !el.disabled", arg=button.element_handle(), timeout=10_000)
    button.click()
    images = panel.locator(GALLERY_IMAGES)
    expect(images).to_have_count(count, timeout=GENERATE_TIMEOUT_MS)
    page.wait_for_function(
        "(imgs) => imgs.every((img) => img.complete && img.naturalWidth > 0)",
        arg=images.element_handles(),
        timeout=10_000,
    )
    return images


def scroll_to_top_of(panel: Locator) -> None:
    """Put the top of the panel at the top of the notebook's viewport (as after running it)."""
    panel.evaluate("(el) => el.scrollIntoView({block: 'start'})")
    panel.page.wait_for_timeout(300)


def in_viewport(locator: Locator) -> bool:
    box = locator.bounding_box()
    assert box is not None
    return box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"]


def open_and_generate(
    page: Page,
    server: JupyterServer,
    flavour: Flavour,
    artifacts_dir: Path,
) -> Path:
    """Open the quickstart, run it, generate NUM_IMAGES images; return the screenshot path."""
    started = time.monotonic()
    panel = open_panel(page, server, flavour)
    scroll_to_top_of(panel)
    set_number(panel, "Images", NUM_IMAGES)
    set_seed(panel, SEED)
    images = generate(panel, NUM_IMAGES)
    # results beside the form: the first image is visible without scrolling at 1280×900
    assert in_viewport(images.first), images.first.bounding_box()
    from playwright.sync_api import expect

    prompt_row = field_row(panel, "Prompt")
    expect(prompt_row).to_be_visible()  # (once, under load, its box was None for a moment)
    form_box = prompt_row.bounding_box()
    image_box = images.first.bounding_box()
    assert form_box is not None
    assert image_box is not None
    assert image_box["x"] > form_box["x"] + 300  # on the right of the form, not below it

    full = artifacts_dir / f"{flavour}-page.png"
    page.screenshot(path=str(full), full_page=False)
    shot = artifacts_dir / f"{flavour}-panel.png"
    panel.screenshot(path=str(shot))
    elapsed = time.monotonic() - started
    print(f"{flavour}: {NUM_IMAGES} images after {elapsed:.1f} s; screenshots in {full.parent}")
    return shot


def assert_form_lays_out_in_columns(panel: Locator) -> None:
    """ "Format" sits in its grid column (does not float right); "Acceleration" is one line."""
    fmt = panel.locator(".widget-label", has_text="Format").first.bounding_box()
    accel = panel.locator(".widget-label", has_text="Acceleration").first
    box = accel.bounding_box()
    assert fmt is not None
    assert box is not None
    prompt = field_row(panel, "Prompt").bounding_box()
    assert prompt is not None
    assert fmt["x"] < prompt["x"] + 480, (fmt, prompt)  # inside the form's width
    line = accel.evaluate("(el) => parseFloat(getComputedStyle(el).lineHeight) || 20")
    assert box["height"] <= 1.5 * line, box  # one line, not wrapped


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
        assert_form_lays_out_in_columns(page.locator(PANEL).first)
    except Exception:
        page.screenshot(path=str(artifacts_dir / f"{flavour}-failure.png"))
        print(server.log_tail())
        raise
    # `make screenshots` refreshes the README's picture; `make test` leaves the tree clean.
    wanted = flavour == "lab" and os.environ.get(UPDATE_SCREENSHOTS)
    if wanted and update_if_changed(shot, REPO_ROOT / "docs" / "screenshot-panel.png"):
        print("docs/screenshot-panel.png updated")


def test_big_seed_survives_restore_and_compare_view(
    page: Page,
    notebook_root: Path,
    jupyter_factory: JupyterServerFactory,
    artifacts_dir: Path,
) -> None:
    """A 19-digit seed typed, run, changed and restored comes back exactly; two results can be
    compared with the slider and side by side."""
    server = jupyter_factory("lab", notebook_root)
    try:
        panel = open_panel(page, server, "lab")
        scroll_to_top_of(panel)
        set_number(panel, "Images", 1)
        set_seed(panel, BIG_SEED)
        generate(panel, 1)
        set_seed(panel, 11)
        images = generate(panel, 2)
        assert "seed 11" in (images.nth(0).get_attribute("alt") or "")
        assert f"seed {BIG_SEED}" in (images.nth(1).get_attribute("alt") or "")

        # Restore the older run from its header in the gallery: the seed is exact
        older = panel.locator(".fw-run").nth(1)
        older.locator("button", has_text="Restore").click()
        page.wait_for_function(
            "([el, v]) => el.value === v", arg=[seed_box(panel).element_handle(), BIG_SEED]
        )
        assert seed_box(panel).input_value() == BIG_SEED

        # Compare: open the first, "Compare with…", click the second
        images.nth(0).click()
        viewer = page.locator(".fw-viewer.fw-open")  # an overlay on the page's body
        viewer.wait_for()
        viewer.locator("button", has_text="Compare with").click()
        images.nth(1).click()
        stage = page.locator(".fw-compare")
        stage.wait_for()
        assert stage.locator("img").count() == 2
        slider = page.locator(".fw-slider")
        slider.fill("20")
        clip = page.locator(".fw-over").evaluate("(el) => el.style.clipPath")
        assert clip == "inset(0px 80% 0px 0px)" or "80%" in clip, clip
        page.screenshot(path=str(artifacts_dir / "lab-compare.png"))
        viewer.locator("button", has_text="Side by side").click()
        page.locator(".fw-pair img").nth(1).wait_for()
        assert page.locator(".fw-pair img").count() == 2
        title = page.locator(".fw-viewer-title")
        assert title.evaluate("(el) => el.getClientRects().length") == 1  # one line
        page.screenshot(path=str(artifacts_dir / "lab-compare-side-by-side.png"))
        page.keyboard.press("Escape")
        page.locator(".fw-overlay").wait_for(state="detached", timeout=5_000)

        # History tab: one line per run, newest first, the 19-digit seed exact
        panel.locator(".fw-tab", has_text="History").first.click()
        rows = panel.locator(".fw-history-row")
        rows.nth(1).wait_for()
        assert "seed 11" in rows.nth(0).inner_text()
        assert f"seed {BIG_SEED}" in rows.nth(1).inner_text()
        page.screenshot(path=str(artifacts_dir / "lab-history.png"))
    except Exception:
        page.screenshot(path=str(artifacts_dir / "lab-seed-compare-failure.png"))
        print(server.log_tail())
        raise


def test_notebook_saved_with_widget_state_reopens_with_its_images(
    page: Page,
    browser: Browser,
    notebook_root: Path,
    jupyter_factory: JupyterServerFactory,
    artifacts_dir: Path,
) -> None:
    """Generate, save with "save widget state" on, stop the kernel, open the notebook again in
    a fresh page: the gallery shows the images from the saved state alone. So does a notebook
    executed headless by nbclient (no browser ever showed it), run meanwhile in a thread."""
    headless = ThreadPoolExecutor(max_workers=1)
    executed = headless.submit(
        execute_notebook,
        write_panel_notebook(notebook_root.parent / "src" / HEADLESS_NOTEBOOK),
        notebook_root,
    )
    server = jupyter_factory("lab", notebook_root, save_widget_state=True)
    try:
        panel = open_panel(page, server, "lab")
        set_number(panel, "Images", NUM_IMAGES)
        set_seed(panel, SEED)
        generate(panel, NUM_IMAGES)
        page.wait_for_timeout(500)
        run_command(page, "docmanager:save")
        page.wait_for_function(
            "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=10_000
        )
        saved = json.loads((notebook_root / "quickstart.ipynb").read_text())
        state = saved["metadata"]["widgets"][WIDGET_STATE]["state"]
        galleries = [
            m for m in state.values() if m["state"].get("_esm", "").find("fw-gallery") >= 0
        ]
        assert galleries, "no gallery in the saved widget state"
        assert len(galleries[0]["state"]["entries"]) == NUM_IMAGES
        assert len(galleries[0].get("buffers", [])) >= NUM_IMAGES  # thumbnails, base64
        size = len(json.dumps(state))
        print(f"saved widget state: {len(state)} models, {size} bytes")
        run_command(page, "kernelmenu:shutdown")
        # The reopened page must show the saved state, not a live kernel's widgets.
        page.wait_for_function(
            "async (url) => (await (await fetch(url)).json()).length === 0",
            arg=server.url + "/api/kernels",
            timeout=KERNEL_TIMEOUT_MS,
            polling=250,
        )
        page.close()

        context = browser.new_context(viewport=VIEWPORT)
        reopened = context.new_page()
        try:
            reopened.goto(server.url + URL_PATHS["lab"], wait_until="domcontentloaded")
            images = reopened.locator(GALLERY_IMAGES)
            from playwright.sync_api import expect

            expect(images).to_have_count(NUM_IMAGES, timeout=KERNEL_TIMEOUT_MS)
            reopened.wait_for_function(
                "(imgs) => imgs.every((img) => img.complete && img.naturalWidth > 0)",
                arg=images.element_handles(),
                timeout=10_000,
            )
            images.first.scroll_into_view_if_needed()
            reopened.screenshot(path=str(artifacts_dir / "lab-reopened.png"))

            executed.result(timeout=120)  # the headless run: 2 + 1 images in two runs
            # JupyterLab draws widgets only in trusted notebooks; nbclient does not sign
            subprocess.run(
                [sys.executable, "-m", "jupyter", "trust", HEADLESS_NOTEBOOK],
                cwd=notebook_root,
                env=server.environment(),
                check=True,
                capture_output=True,
            )
            reopened.goto(
                server.url + f"/lab/tree/{HEADLESS_NOTEBOOK}?reset", wait_until="domcontentloaded"
            )
            images = reopened.locator(GALLERY_IMAGES)
            expect(images).to_have_count(3, timeout=KERNEL_TIMEOUT_MS)
            reopened.wait_for_function(
                "(imgs) => imgs.every((img) => img.complete && img.naturalWidth > 0)",
                arg=images.element_handles(),
                timeout=10_000,
            )
            runs = reopened.locator(".fw-gallery .fw-run")
            expect(runs).to_have_count(2)
            expect(runs.first.locator("img.fw-thumb")).to_have_count(1)  # newest run first
            images.first.scroll_into_view_if_needed()
            reopened.screenshot(path=str(artifacts_dir / "lab-reopened-headless.png"))
        finally:
            context.close()
    except Exception:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(artifacts_dir / "lab-reopen-failure.png"))
        print(server.log_tail())
        raise
    finally:
        headless.shutdown(wait=True)


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

        run_command(page, "docmanager:save")
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
