"""Tabs the panel owns: a small tab bar (anywidget) above pages in a plain box.

``ipywidgets.Tab`` renders through a Lumino ``TabBar``; after a browser reload with the kernel
running, that bar sometimes never gets its pointer listener, and clicks on its titles stop doing
anything (issue 17: about 1 reload in 10 even with a Layout of its own). `Tabs` keeps the same
Python shape (``children``, ``titles``, ``selected_index``) but draws the titles as plain
buttons, and shows the selected page by a class on its box: ``fw-tab-sel-N``. The browser sets
that class at once on a click (so switching works in a snapshot without a kernel too) and the
kernel sets it in the box's ``_dom_classes``, so a saved notebook reopens on the same page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import anywidget
import ipywidgets as widgets
import traitlets

from ._thumbs import static_text

__all__ = ["MAX_TABS", "TabBar", "Tabs"]

MAX_TABS = 8
"""The most pages a `Tabs` holds (the stylesheet has a rule per index)."""
ROOT_CLASS = "fw-tabs"
PAGE_CLASS = "fw-tab-page"


def _selected_class(index: int) -> str:
    return f"fw-tab-sel-{index}"


class TabBar(anywidget.AnyWidget):
    """A row of tab titles; a click sets ``selected_index`` (and its box's page class)."""

    _esm = static_text("tabs.js")
    _css = static_text("tabs.css")
    titles = traitlets.List(traitlets.Unicode()).tag(sync=True)
    selected_index = traitlets.Int(0).tag(sync=True)


class Tabs(widgets.VBox):  # type: ignore[misc]
    """Pages under a `TabBar`; only the selected page is shown.

    ``children`` are the pages (the bar is kept first among the box's own children);
    ``selected_index`` and ``observe(handler, "selected_index")`` work as on ``ipywidgets.Tab``.
    """

    selected_index = traitlets.Int(0)

    def __init__(self, pages: Sequence[widgets.Widget], titles: Sequence[str]) -> None:
        if len(pages) != len(titles):
            raise ValueError(f"Tabs: {len(pages)} pages but {len(titles)} titles")
        if not 0 < len(pages) <= MAX_TABS:
            raise ValueError(f"Tabs: 1 to {MAX_TABS} pages, not {len(pages)}")
        self.bar = TabBar(titles=list(titles))
        self.pages: tuple[widgets.Widget, ...] = tuple(pages)
        for index, page in enumerate(self.pages):
            page.add_class(PAGE_CLASS)
            page.add_class(f"{PAGE_CLASS}-{index}")
        super().__init__([self.bar, *self.pages])
        self.add_class(ROOT_CLASS)
        self.add_class(_selected_class(0))
        self.bar.observe(self._bar_clicked, "selected_index")
        self.observe(self._selected, "selected_index")

    @property
    def titles(self) -> tuple[str, ...]:
        """The tab titles, in page order."""
        return tuple(self.bar.titles)

    def _bar_clicked(self, change: dict[str, Any]) -> None:
        index = int(change["new"])
        if 0 <= index < len(self.pages):
            self.selected_index = index

    def _selected(self, change: dict[str, Any]) -> None:
        old, new = int(change["old"]), int(change["new"])
        if not 0 <= new < len(self.pages):
            self.selected_index = old
            return
        self.remove_class(_selected_class(old))
        self.add_class(_selected_class(new))
        self.bar.selected_index = new

    def on_select(self, handler: Callable[[int], None]) -> None:
        """Call `handler(index)` whenever another page is selected (by a click or by code)."""
        self.observe(lambda change: handler(int(change["new"])), "selected_index")

    def close(self) -> None:
        """Close the bar and the box (the pages are their owner's to close)."""
        bar = getattr(self, "bar", None)  # absent when __init__ refused its arguments
        if bar is not None:
            bar.close()
        super().close()
