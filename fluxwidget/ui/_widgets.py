"""Small widget helpers shared by the ui modules."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any

import ipywidgets as widgets

__all__ = [
    "close_tree",
    "error_html",
    "esc",
    "is_shared",
    "lighten",
    "muted",
    "replace_children",
    "shared_layout",
    "shared_style",
]

_SHARED: dict[tuple[str, str], Any] = {}
_SHARED_IDS: set[str] = set()


def _canonical(part: Any) -> Any:
    """The shared instance equal to this Layout/style (this one becomes it when first seen)."""
    state = {k: v for k, v in part.get_state().items() if not k.startswith("_")}
    key = (type(part).__name__, json.dumps(state, sort_keys=True, default=str))
    found = _SHARED.get(key)
    if found is not None and found.comm is not None:
        if found is not part:
            part.close()
        return found
    _SHARED[key] = part
    _SHARED_IDS.add(part.model_id)
    return part


def shared_layout(**css: Any) -> widgets.Layout:
    """One `Layout` model per distinct set of CSS values, shared by every widget using it.

    Every ipywidgets widget otherwise brings its own Layout model (weight in saved notebooks).
    Never change a shared layout's values: give the widget its own Layout instead.
    """
    return _canonical(widgets.Layout(**css))


def shared_style(widget_class: type[widgets.Widget], **values: Any) -> Any:
    """The shared style model of `widget_class` (its own style class) with these values."""
    return _canonical(widget_class.style.klass(**values))


def lighten(root: Any) -> None:
    """Share equal Layout and style models across a widget tree (fewer models to save).

    A layout with ``display`` set is left alone: that widget is shown and hidden on its own.
    """
    for child in getattr(root, "children", ()) or ():
        lighten(child)
    layout = getattr(root, "layout", None)
    if isinstance(layout, widgets.Layout) and layout.display is None and not is_shared(layout):
        root.layout = _canonical(layout)
    style = getattr(root, "style", None)
    if isinstance(style, widgets.Widget) and not is_shared(style):
        root.style = _canonical(style)


def is_shared(widget: Any) -> bool:
    """True for a shared Layout or style (close_tree leaves it for the other users)."""
    return getattr(widget, "_model_id", None) in _SHARED_IDS


def esc(text: object) -> str:
    """HTML-escape any user- or server-provided text (quotes included)."""
    return html.escape(str(text), quote=True)


def muted(text: str) -> str:
    """Escaped text in a small grey span."""
    return f'<span style="color:#666;font-size:90%">{esc(text)}</span>'


def close_tree(widget: Any) -> None:
    """Close a widget and, depth first, every widget it holds (children, layout, style)."""
    for child in getattr(widget, "children", ()) or ():
        close_tree(child)
    for name in ("layout", "style"):
        part = getattr(widget, name, None)
        if isinstance(part, widgets.Widget) and not is_shared(part):
            part.close()
    if isinstance(widget, widgets.Widget):
        widget.close()


def replace_children(box: Any, children: Iterable[Any], *, close_dropped: bool = True) -> None:
    """Set `box.children`, closing the widgets that are no longer shown."""
    new = tuple(children)
    if close_dropped:
        keep = {id(child) for child in new}
        for old in box.children:
            if id(old) not in keep:
                close_tree(old)
    box.children = new


def error_html(message: str) -> str:
    """An inline error message (escaped), or "" for no message."""
    if not message:
        return ""
    return f'<span style="color:#b00020">⚠ {esc(message)}</span>'
