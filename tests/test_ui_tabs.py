"""The panel's own tabs (fluxwidget/ui/tabs.py): the Python side of the tab bar.

The browser side (clicks after page reloads) is in tests/browser/test_life_browser.py.
"""

from __future__ import annotations

from pathlib import Path

import ipywidgets as widgets
import pytest

from fluxwidget import FluxPanel
from fluxwidget.ui.tabs import MAX_TABS, TabBar, Tabs


def make_tabs() -> Tabs:
    return Tabs([widgets.HTML("a"), widgets.HTML("b"), widgets.HTML("c")], ["A", "B", "C"])


def test_the_first_page_is_selected_and_marked() -> None:
    tabs = make_tabs()
    assert tabs.selected_index == 0
    assert tabs.titles == ("A", "B", "C")
    assert isinstance(tabs.children[0], TabBar)
    assert "fw-tabs" in tabs._dom_classes
    assert "fw-tab-sel-0" in tabs._dom_classes
    for index, page in enumerate(tabs.pages):
        assert {"fw-tab-page", f"fw-tab-page-{index}"} <= set(page._dom_classes)
    tabs.close()


def test_a_click_in_the_bar_selects_the_page_and_moves_the_class() -> None:
    tabs = make_tabs()
    seen: list[int] = []
    tabs.on_select(seen.append)
    tabs.bar.selected_index = 2  # what the browser sends on a click
    assert tabs.selected_index == 2
    assert "fw-tab-sel-2" in tabs._dom_classes
    assert "fw-tab-sel-0" not in tabs._dom_classes
    assert seen == [2]
    tabs.close()


def test_selecting_from_code_updates_the_bar() -> None:
    tabs = make_tabs()
    tabs.selected_index = 1
    assert tabs.bar.selected_index == 1
    assert [c for c in tabs._dom_classes if c.startswith("fw-tab-sel-")] == ["fw-tab-sel-1"]
    tabs.close()


def test_an_index_out_of_range_is_ignored() -> None:
    tabs = make_tabs()
    tabs.bar.selected_index = 7
    assert tabs.selected_index == 0
    tabs.selected_index = 5
    assert tabs.selected_index == 0
    assert "fw-tab-sel-0" in tabs._dom_classes
    tabs.close()


def test_pages_and_titles_must_match() -> None:
    with pytest.raises(ValueError, match="2 pages but 1 titles"):
        Tabs([widgets.HTML(), widgets.HTML()], ["one"])
    with pytest.raises(ValueError, match=f"1 to {MAX_TABS} pages"):
        Tabs([], [])


def test_the_stylesheet_hides_every_unselected_page_index() -> None:
    css = TabBar._css
    for index in range(MAX_TABS):
        assert f".fw-tabs.fw-tab-sel-{index} > .fw-tab-page:not(.fw-tab-page-{index})" in css


def test_the_panel_uses_its_own_tabs_and_builds_the_sweep_form_on_first_selection(
    tmp_path: Path,
) -> None:
    panel = FluxPanel(runs_root=tmp_path)
    try:
        assert isinstance(panel.tabs, Tabs)
        assert panel.tabs.titles == ("Generate", "Sweep", "History")
        assert not any(isinstance(w, widgets.Tab) for w in _walk(panel.widget))
        assert panel.sweep_form is None
        panel.tabs.bar.selected_index = 1
        assert panel.sweep_form is not None
        assert panel.tabs.selected_index == 1
    finally:
        panel.close()


def _walk(widget: widgets.Widget) -> list[widgets.Widget]:
    found = [widget]
    for child in getattr(widget, "children", ()):
        found.extend(_walk(child))
    return found
