"""The static fallback of a panel follows clicks: what a shared notebook shows without widgets.

A panel is displayed by one cell; its Generate button is clicked later, when no cell runs. The
notebook saved after that holds, beside the widget view, a ``text/html`` fallback with the
clicked run's thumbnails (what GitHub, nbviewer and an HTML export show), in JupyterLab and in
Notebook 7.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .test_panel_browser import (
    NUM_IMAGES,
    SEED,
    generate,
    open_panel,
    set_number,
    set_seed,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from .conftest import Flavour, JupyterServerFactory

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
JS_SAVE = "async () => { await window.jupyterapp.shell.currentWidget.context.save(); }"
DATA_IMAGE = re.compile(r"<img[^>]+src=\"data:image/jpeg;base64,")


def saved_panel_fallback(path: Path) -> str:
    """The ``text/html`` output after the panel's widget view in the saved notebook."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        outputs = cell.get("outputs", [])
        for view, fallback in itertools.pairwise(outputs):
            if WIDGET_VIEW in view.get("data", {}) and "FluxPanel" in str(view["data"]):
                html = fallback.get("data", {}).get("text/html", "")
                return "".join(html) if isinstance(html, list) else str(html)
    raise AssertionError("no panel output in the saved notebook")


@pytest.mark.parametrize("flavour", ["lab", "notebook"])
def test_results_of_later_clicks_reach_the_saved_fallback(
    page: Page,
    notebook_root: Path,
    jupyter_factory: JupyterServerFactory,
    artifacts_dir: Path,
    flavour: Flavour,
) -> None:
    from playwright.sync_api import expect

    server = jupyter_factory(flavour, notebook_root)
    try:
        panel = open_panel(page, server, flavour)
        notebook = notebook_root / "quickstart.ipynb"
        set_number(panel, "Images", NUM_IMAGES)
        set_seed(panel, SEED)
        # where the widget is drawn its fallback output is hidden (no snapshot twice)
        fallback = page.locator(".fluxwidget-fallback").first
        expect(fallback).to_be_attached()
        expect(fallback).to_be_hidden()
        root = panel.locator(".fw-snapshot-root").first
        root.evaluate("(el) => { el.dataset.fwSameView = 'yes'; }")
        generate(panel, NUM_IMAGES)  # a click: no cell runs when its results arrive

        def saved() -> str:
            # the save's own promise: settled once the server has written the file (the
            # "not dirty" flag may already be clear from the last save while a write runs)
            page.evaluate(JS_SAVE)
            return saved_panel_fallback(notebook)

        # the update is sent a moment after the results (one for the burst): poll the saves
        html = saved()
        for _attempt in range(20):
            if len(DATA_IMAGE.findall(html)) >= NUM_IMAGES:
                break
            page.wait_for_timeout(250)
            html = saved()
        assert len(DATA_IMAGE.findall(html)) == NUM_IMAGES, html[:2000]
        assert "no results when this snapshot was taken" not in html
        assert f"seed {SEED}" in html
        # only the fallback was updated: the panel's view is the same element (not re-created,
        # which would close what the user had open)
        expect(panel.locator(".fw-snapshot-root[data-fw-same-view=yes]")).to_have_count(1)
        expect(fallback).to_be_hidden()
        page.screenshot(path=str(artifacts_dir / f"{flavour}-fallback-after-click.png"))
    except Exception:
        print(server.log_tail())
        raise
