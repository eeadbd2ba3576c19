"""Small widget helpers shared by the ui modules."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

import ipywidgets as widgets

__all__ = ["close_tree", "error_html", "esc", "muted", "replace_children"]


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
        if isinstance(part, widgets.Widget):
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
