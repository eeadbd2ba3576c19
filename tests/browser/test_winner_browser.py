"""Pick the winner in real JupyterLab (1280 × 900): rate a sweep's cell by keyboard, then a blind
A/B round whose parameters stay hidden until the vote; both stored in the run folder."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import pytest

from .test_panel_browser import KERNEL_TIMEOUT_MS, VIEWPORT, run_all_cells, wait_for_idle_kernel

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from .conftest import JupyterServerFactory

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

SOURCE = """\
from fluxwidget import sweep
run = sweep(
    {"prompt": "a fox in the snow", "image_size": "square", "num_inference_steps": 4},
    "guidance_scale=2,5", "seed=1,2", out="fluxwidget-runs/winner", confirm=True,
)
run"""


def _lines(folder: Path) -> list[dict[str, object]]:
    path = folder / "ratings.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_rate_by_keyboard_and_a_blind_round_in_jupyterlab(
    browser: Browser, tmp_path: Path, jupyter_factory: JupyterServerFactory, artifacts_dir: Path
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)  # each check waits on a kernel round trip (a loaded CI)

    root = tmp_path / "root"
    root.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(SOURCE)]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nbformat.write(notebook, root / "winner.ipynb")
    folder = root / "fluxwidget-runs" / "winner"
    server = jupyter_factory("lab", root)
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        page.goto(server.url + "/lab/tree/winner.ipynb", wait_until="domcontentloaded")
        wait_for_idle_kernel(page)
        run_all_cells(page)
        grid = page.locator(".fw-sweep")
        expect(grid.locator(".fw-cell.fw-done img.fw-cell-img")).to_have_count(
            4, timeout=KERNEL_TIMEOUT_MS
        )
        wait_for_idle_kernel(page)

        # rate by keyboard: click a cell, 4 stars; click the next one, pick it
        grid.locator(".fw-cell.fw-done").first.click()
        expect(grid.locator(".fw-rating-bar")).to_be_visible()
        page.keyboard.press("4")
        expect(grid.locator(".fw-cell-rating").first).to_have_text("★★★★")
        grid.locator(".fw-cell.fw-done").nth(1).click()
        expect(grid.locator(".fw-cell.fw-done").nth(1)).to_have_class(re.compile("fw-selected"))
        page.keyboard.press("p")
        expect(grid.locator(".fw-cell-rating")).to_have_count(2)
        expect(grid.locator(".fw-rating-bar .fw-pick.fw-on")).to_have_count(1)
        rated = _lines(folder)
        assert [line.get("stars") for line in rated] == [4, None]
        assert rated[1]["verdict"] == "pick"
        expect(page.get_by_text("Winner so far")).to_be_visible()
        grid.screenshot(path=str(artifacts_dir / "lab-winner-grid.png"))

        # a blind A/B round: parameters hidden until the vote
        page.get_by_role("button", name="Blind A/B").click()
        ab = page.locator(".fw-ab")
        expect(ab.locator("img.fw-ab-img")).to_have_count(2)
        expect(ab.locator(".fw-ab-hidden")).to_have_count(2)
        expect(ab.locator(".fw-ab-params")).to_have_count(0)
        assert "guidance_scale" not in ab.inner_text()
        ab.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts_dir / "lab-winner-before-vote.png"))
        ab.focus()
        page.keyboard.press("ArrowLeft")
        expect(ab.locator(".fw-ab-params")).to_have_count(2)
        expect(ab.locator(".fw-ab-side.fw-ab-won.fw-ab-left")).to_have_count(1)
        expect(ab.locator(".fw-ab-params").first).to_contain_text("guidance_scale")
        votes = [line for line in _lines(folder) if line["event"] == "vote"]
        assert len(votes) == 1
        assert votes[0]["winner"] == "a"
        expect(ab.locator(".fw-ab-head")).to_contain_text("1 vote so far")
        page.screenshot(path=str(artifacts_dir / "lab-winner.png"))
    except Exception:
        page.screenshot(path=str(artifacts_dir / "lab-winner-failure.png"))
        print(server.log_tail())
        raise
    finally:
        context.close()
