"""The History tab over earlier runs in a real JupyterLab: one row per run, expandable.

Before JupyterLab starts, the notebook's runs folder gets two earlier runs (a panel session of
three jobs and a 3 × 2 sweep, written with the store API as the pipeline writes them). The
panel's History tab shows one row for each, with a thumbnail loaded on demand and its text in
full (wrapped, never cut); a click on the sweep's row shows its six cells with their axis
values, and Restore of one cell puts that cell's seed into the Generate form.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .test_panel_browser import KERNEL_TIMEOUT_MS, open_panel, seed_box

try:  # tests/ is on sys.path in pytest's default import mode; a package layout also works
    from test_ui_history import T0, noise_jpeg, panel_inputs, write_run, write_sweep
except ImportError:  # pragma: no cover
    from tests.test_ui_history import T0, noise_jpeg, panel_inputs, write_run, write_sweep

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from .conftest import JupyterServerFactory

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

LONG_PROMPT = "a very long prompt about a lighthouse on a cliff at dusk, " * 4


def test_history_shows_one_row_per_earlier_run_and_expands_a_sweep(
    page: Page,
    notebook_root: Path,
    jupyter_factory: JupyterServerFactory,
    artifacts_dir: Path,
) -> None:
    from playwright.sync_api import expect

    rng = random.Random(5)
    pictures = [noise_jpeg(rng, 256) for _ in range(3)]
    runs = Path(os.environ["FLUXWIDGET_RUNS"])  # the kernel's runs folder (tests/conftest.py)
    write_run(runs / "earlier", panel_inputs(LONG_PROMPT, "second", "third"), pictures, created=T0)
    write_sweep(runs / "lighthouse-sweep", pictures, created=T0 + 60, grid=True)

    server = jupyter_factory("lab", notebook_root)
    try:
        panel = open_panel(page, server, "lab")
        panel.locator(".fw-tab", has_text="History").first.click()
        rows = panel.locator(".fw-history-row.fw-history-run")
        expect(rows).to_have_count(2, timeout=KERNEL_TIMEOUT_MS)
        # newest first: the sweep, then the panel session; each with a thumbnail that loads
        expect(rows.first).to_contain_text("sweep")
        thumbs = rows.locator("img")
        expect(thumbs).to_have_count(2, timeout=10_000)
        page.wait_for_function(
            "(imgs) => imgs.every((img) => img.complete && img.naturalWidth > 0)",
            arg=thumbs.element_handles(),
            timeout=10_000,
        )
        # the text is shown in full: wrapped, never cut with an ellipsis
        for text in rows.locator(".fw-history-text").all():
            clipped = text.evaluate("(el) => el.scrollWidth > el.clientWidth + 1")
            assert not clipped, text.inner_text()
        rows.first.click()
        cells = panel.locator(".fw-history-jobs .fw-history-job")
        expect(cells).to_have_count(6, timeout=10_000)
        expect(cells.first.locator(".fw-history-axes")).to_contain_text("guidance")
        cell_thumbs = cells.locator("img")  # each cell's thumbnail, asked for when drawn
        expect(cell_thumbs).to_have_count(6, timeout=10_000)
        page.wait_for_function(
            "(imgs) => imgs.every((img) => img.complete && img.naturalWidth > 0)",
            arg=cell_thumbs.element_handles(),
            timeout=10_000,
        )
        page.screenshot(path=str(artifacts_dir / "lab-history-runs.png"))
        cells.nth(1).locator("button", has_text="Restore").click()
        # Restore shows the Generate tab with that cell's seed (the sweep's cells: 1000 + n)
        expect(seed_box(panel)).to_have_value("1001", timeout=10_000)
        expect(seed_box(panel)).to_be_visible()
    except Exception:
        page.screenshot(path=str(artifacts_dir / "lab-history-failure.png"))
        print(server.log_tail())
        raise
