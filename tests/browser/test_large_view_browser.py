"""The large view in JupyterLab at 1280×900: a click opens the image across the results column,
←/→ and the buttons step through the results, Esc closes; the price shows next to Generate.
The screenshot goes to ``artifacts/browser/lab-large-view.png``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .test_panel_browser import (
    GENERATE_BUTTON,
    generate,
    open_panel,
    scroll_to_top_of,
    set_number,
    set_seed,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from .conftest import JupyterServerFactory

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def test_large_view_is_large_and_steps_with_keys(
    page: Page,
    notebook_root: Path,
    jupyter_factory: JupyterServerFactory,
    artifacts_dir: Path,
) -> None:
    server = jupyter_factory("lab", notebook_root)
    try:
        panel = open_panel(page, server, "lab")
        scroll_to_top_of(panel)
        set_number(panel, "Images", 2)
        set_seed(panel, 7)
        price = panel.locator(".fw-price")
        price.wait_for(timeout=10_000)
        assert "(2 × 1 MP)" in price.inner_text()
        assert panel.locator(GENERATE_BUTTON).count() >= 1
        images = generate(panel, 2)
        images.nth(0).click()
        viewer = panel.locator(".fw-viewer.fw-open")
        viewer.wait_for()
        big = viewer.locator("img.fw-big")
        big.wait_for()
        page.wait_for_function(
            "(img) => img.complete && img.naturalWidth > 0", arg=big.element_handle()
        )
        column = panel.locator(".fw-gallery").bounding_box()
        box = big.bounding_box()
        assert column is not None
        assert box is not None
        assert box["width"] >= column["width"] - 40, (box, column)  # the column's full width
        first = viewer.locator(".fw-viewer-title").inner_text()
        assert "steps" in first, first
        assert "cfg" in first, first
        page.screenshot(path=str(artifacts_dir / "lab-large-view.png"))

        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "([el, t]) => el.textContent !== t",
            arg=[viewer.locator(".fw-viewer-title").element_handle(), first],
        )
        assert "2/2" in viewer.locator(".fw-viewer-title").inner_text()
        viewer.locator("button.fw-prev").click()
        assert "1/2" in panel.locator(".fw-viewer-title").inner_text()
        panel.locator(".fw-viewer").focus()
        page.keyboard.press("Escape")
        panel.locator(".fw-viewer.fw-open").wait_for(state="detached", timeout=5_000)
    except Exception:
        page.screenshot(path=str(artifacts_dir / "lab-large-view-failure.png"))
        print(server.log_tail())
        raise
