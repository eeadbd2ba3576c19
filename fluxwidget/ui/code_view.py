"""The "Show code" view: fluxwidget, httpx and cURL snippets for the current parameters."""

from __future__ import annotations

import ipywidgets as widgets

from ..schema import FluxLoraInput, InputError
from ._widgets import built_quietly, close_tree, error_html, esc, lighten
from .codegen import Target, snippets
from .status import problem_text
from .tabs import Tabs

__all__ = ["CodeView"]

_TITLES = ("fluxwidget", "httpx", "cURL")


class CodeView:
    """A toggle and, when on, three tabs of code (escaped, key written as ``$FAL_KEY``).

    The tabs and their pages are made the first time the code is shown: a panel nobody asked
    for code saves none of their models.
    """

    def __init__(self) -> None:
        self.toggle = widgets.ToggleButton(
            description="Show code", icon="code", tooltip="The equivalent Python and cURL"
        )
        self.pages: list[widgets.HTML] = []
        """The three pages (fluxwidget, httpx, cURL): empty until the code is first shown."""
        self.tabs: Tabs | None = None
        self.box = widgets.VBox(layout=widgets.Layout(display="none"))
        self.code: dict[str, str] = {}
        self.toggle.observe(self._toggled, "value")

    @property
    def visible(self) -> bool:
        """True when the code is shown."""
        return bool(self.toggle.value)

    def _build(self) -> None:
        if self.tabs is not None:
            return
        with built_quietly():
            self.pages = [widgets.HTML() for _ in _TITLES]
            self.tabs = Tabs(self.pages, _TITLES)
            lighten(self.tabs)
        self.box.children = (self.tabs,)

    def _toggled(self, change: dict[str, object]) -> None:
        if change["new"]:
            self._build()
        self.box.layout.display = None if change["new"] else "none"

    def refresh(self, params: FluxLoraInput | InputError, target: Target) -> None:
        """Show the snippets for `params`, or the form's problems."""
        self._build()
        if isinstance(params, InputError):
            self.code = {}
            message = "The form is invalid: " + "; ".join(map(problem_text, params.problems))
            for page in self.pages:
                page.value = error_html(message)
            return
        self.code = snippets(params, target)
        for page, title in zip(self.pages, _TITLES, strict=True):
            page.value = (
                f"<pre style='white-space:pre-wrap;user-select:text'>{esc(self.code[title])}</pre>"
            )

    def close(self) -> None:
        """Close every widget of the view."""
        close_tree(self.toggle)
        close_tree(self.box)
