"""The large view in JupyterLab at 1280×900: a click opens the image in an overlay over the page,
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
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
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
        viewer = page.locator(".fw-viewer.fw-open")  # an overlay on the page's body
        viewer.wait_for()
        big = viewer.locator("img.fw-big")
        big.wait_for()
        page.wait_for_function(
            "(img) => img.complete && img.naturalWidth > 0", arg=big.element_handle()
        )
        box = big.bounding_box()
        assert box is not None
        assert box["width"] >= 1000, box  # over the page, not the ~380 px results column
        assert box["height"] >= 600, box
        first = viewer.locator(".fw-viewer-title").inner_text()
        assert "steps" in first, first
        assert "cfg" in first, first

        page.wait_for_timeout(500)  # the full image replaces the thumbnail
        page.screenshot(path=str(artifacts_dir / "lab-large-view.png"))
        page.keyboard.press("ArrowRight")
        page.wait_for_function(  # the bar is drawn anew: ask the document each time
            "(t) => document.querySelector('.fw-viewer.fw-open .fw-viewer-title')"
            "?.textContent !== t",
            arg=first,
            timeout=5_000,
        )
        assert "2/2" in viewer.locator(".fw-viewer-title").inner_text()
        viewer.locator("button.fw-prev").click()
        assert "1/2" in page.locator(".fw-viewer-title").inner_text()
        page.keyboard.press("Escape")
        page.locator(".fw-overlay").wait_for(state="detached", timeout=5_000)
    except Exception:
        page.screenshot(path=str(artifacts_dir / "lab-large-view-failure.png"))
        print(server.log_tail())
        print("page errors:", errors)
        raise
