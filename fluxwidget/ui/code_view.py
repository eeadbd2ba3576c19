"""The "Show code" view: fluxwidget, httpx and cURL snippets for the current parameters."""

from __future__ import annotations

import ipywidgets as widgets

from ..schema import FluxLoraInput, InputError
from ._widgets import close_tree, error_html, esc
from .codegen import Target, snippets
from .status import problem_text
from .tabs import Tabs

__all__ = ["CodeView"]

_TITLES = ("fluxwidget", "httpx", "cURL")


class CodeView:
    """A toggle and, when on, three tabs of code (escaped, key written as ``$FAL_KEY``)."""

    def __init__(self) -> None:
        self.toggle = widgets.ToggleButton(
            description="Show code", icon="code", tooltip="The equivalent Python and cURL"
        )
        self.pages = [widgets.HTML() for _ in _TITLES]
        self.tabs = Tabs(self.pages, _TITLES)
        self.box = widgets.VBox([self.tabs], layout=widgets.Layout(display="none"))
        self.code: dict[str, str] = {}
        self.toggle.observe(self._toggled, "value")

    @property
    def visible(self) -> bool:
        """True when the code is shown."""
        return bool(self.toggle.value)

    def _toggled(self, change: dict[str, object]) -> None:
        self.box.layout.display = None if change["new"] else "none"

    def refresh(self, params: FluxLoraInput | InputError, target: Target) -> None:
        """Show the snippets for `params`, or the form's problems."""
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
