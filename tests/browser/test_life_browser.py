"""A panel's life in a browser beyond one page: reloads with the kernel running, and reopening
without a kernel.

- Reload: the saved notebook is reloaded 6 times, in JupyterLab and in Notebook 7, while its
  kernel runs; after each, the tabs switch (Sweep first, then Generate and History), and the
  kernel sees every switch.
- Reopen without a kernel: the notebook saved with widget state reopens as one clean snapshot:
  its results, ONE "not live" notice, and no red "disconnected" icons inside the panel.

Screenshots go to ``artifacts/browser/``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .test_panel_browser import (
    GALLERY_IMAGES,
    KERNEL_TIMEOUT_MS,
    NUM_IMAGES,
    PANEL,
    SEED,
    URL_PATHS,
    VIEWPORT,
    generate,
    open_panel,
    run_command,
    set_number,
    set_seed,
    wait_for_idle_kernel,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

    from .conftest import Flavour, JupyterServerFactory

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

RELOADS = 6
TAB = ".fw-tab"
NOTICE = ".fw-live-notice"
DISCONNECTED = ".jupyter-widgets-disconnected"

# Ask the kernel for the panel's selected tab (the cell's variable is `panel`).
JS_KERNEL_TAB = """async () => {
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    const future = kernel.requestExecute({
        code: "", silent: false, store_history: false,
        user_expressions: {tab: "panel.tabs.selected_index"},
    });
    const reply = await future.done;
    const found = reply.content.user_expressions.tab;
    return found && found.data ? found.data["text/plain"] : null;
}"""


def save(page: Page) -> None:
    run_command(page, "docmanager:save")
    page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=10_000
    )


def select_tab(panel: Locator, title: str, shows: str) -> None:
    """Click a tab title; the page's `shows` element becomes visible, the kernel agrees."""
    from playwright.sync_api import expect

    panel.locator(TAB, has_text=title).first.click()
    expect(panel.locator(shows).first).to_be_visible(timeout=10_000)
    index = {"Generate": "0", "Sweep": "1", "History": "2"}[title]
    page = panel.page
    page.wait_for_function(
        f"async () => (await ({JS_KERNEL_TAB})()) === {index!r}", timeout=10_000, polling=250
    )


@pytest.mark.parametrize("flavour", ["lab", "notebook"])
def test_tabs_switch_after_every_reload_with_the_kernel_running(
    page: Page,
    notebook_root: Path,
    jupyter_factory: JupyterServerFactory,
    artifacts_dir: Path,
    flavour: Flavour,
) -> None:
    # "Save Widget State Automatically" on, as Binder and many users have it: on a reload
    # JupyterLab may build models from the notebook's saved state as well as from the kernel.
    server = jupyter_factory(flavour, notebook_root, save_widget_state=True)
    try:
        open_panel(page, server, flavour)
        save(page)  # the Sweep tab never opened before the first reload
        for attempt in range(RELOADS):
            page.reload(wait_until="domcontentloaded")
            wait_for_idle_kernel(page)
            panel = page.locator(PANEL).first
            panel.wait_for(state="visible", timeout=KERNEL_TIMEOUT_MS)
            try:
                select_tab(panel, "Sweep", "button.jupyter-button:has-text('Start sweep')")
                select_tab(panel, "Generate", "button.jupyter-button:has-text('Generate')")
                select_tab(panel, "History", "button.jupyter-button:has-text('Open folder')")
                select_tab(panel, "Sweep", "button.jupyter-button:has-text('Start sweep')")
                if attempt % 2:  # leave it on Sweep half of the times (the reported case)
                    select_tab(panel, "Generate", "button.jupyter-button:has-text('Generate')")
            except Exception:
                page.screenshot(path=str(artifacts_dir / f"{flavour}-reload-stuck-{attempt}.png"))
                raise
        page.screenshot(path=str(artifacts_dir / f"{flavour}-reloaded-tabs.png"))
    except Exception:
        print(server.log_tail())
        raise


def test_reopened_without_kernel_shows_one_notice_and_no_disconnected_icons(
    page: Page,
    browser: Browser,
    notebook_root: Path,
    jupyter_factory: JupyterServerFactory,
    artifacts_dir: Path,
) -> None:
    from playwright.sync_api import expect

    server = jupyter_factory("lab", notebook_root, save_widget_state=True)
    try:
        panel = open_panel(page, server, "lab")
        expect(panel.locator(NOTICE)).to_be_hidden()  # live: no notice
        set_number(panel, "Images", NUM_IMAGES)
        set_seed(panel, SEED)
        generate(panel, NUM_IMAGES)
        page.wait_for_timeout(500)
        # the job row's summary is shown in full (wraps), never cut with an ellipsis
        done = panel.locator(".widget-html-content div", has_text="Done in").first
        expect(done).to_be_visible()
        clipped = done.evaluate("(el) => el.scrollWidth > el.clientWidth + 1")
        assert not clipped, done.inner_text()
        assert "inference" in done.inner_text()
        panel.screenshot(path=str(artifacts_dir / "lab-live-panel.png"))
        save(page)
        run_command(page, "kernelmenu:shutdown")
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
            expect(images).to_have_count(NUM_IMAGES, timeout=KERNEL_TIMEOUT_MS)
            panel = reopened.locator(".fw-snapshot-root").first
            notice = panel.locator(NOTICE)
            expect(notice).to_have_count(1)
            expect(notice).to_be_visible(timeout=10_000)
            expect(notice).to_have_text("Not live — run the cell to use it.")
            # the icons are drawn as ::before of each disconnected view: none is shown
            shown = panel.evaluate(
                """(root) => [root, ...root.querySelectorAll('.jupyter-widgets-disconnected')]
                    .filter((el) => el.classList.contains('jupyter-widgets-disconnected'))
                    .filter((el) => getComputedStyle(el, '::before').display !== 'none')
                    .length"""
            )
            disconnected = panel.locator(DISCONNECTED).count()
            assert disconnected > 0, "expected views marked disconnected (no kernel)"
            assert shown == 0, f"{shown} disconnected icons visible in the panel"
            expect(panel.locator(".fw-live-only").first).to_be_hidden()  # key box, banner
            expect(panel.locator("button.jupyter-button:has-text('Generate')")).to_be_visible()
            panel.scroll_into_view_if_needed()
            reopened.screenshot(path=str(artifacts_dir / "lab-reopened-not-live.png"))
            # the snapshot's tabs still switch (in the page alone: no kernel to tell)
            panel.locator(TAB, has_text="History").first.click()
            expect(panel.locator("button.jupyter-button:has-text('Open folder')")).to_be_visible()
            expect(panel.locator("button.jupyter-button:has-text('Generate')")).to_be_hidden()
            panel.locator(TAB, has_text="Generate").first.click()
            expect(panel.locator("button.jupyter-button:has-text('Generate')")).to_be_visible()
        finally:
            context.close()
    except Exception:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(artifacts_dir / "lab-not-live-failure.png"))
        print(server.log_tail())
        raise
