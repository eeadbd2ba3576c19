"""Small widget helpers shared by the ui modules."""

from __future__ import annotations

import atexit
import html
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import ipywidgets as widgets

__all__ = [
    "alive",
    "built_quietly",
    "close_tree",
    "error_html",
    "esc",
    "hold",
    "is_shared",
    "lighten",
    "muted",
    "replace_children",
    "shared_layout",
    "shared_style",
]

_SHARED: dict[tuple[str, str], Any] = {}
_SHARED_IDS: dict[int, Any] = {}  # id -> the shared part (held in _SHARED too)
_BY_CSS: dict[str, widgets.Layout] = {}

# --- widgets built quietly -------------------------------------------------------------------
#
# An ipywidgets widget opens its comm (sends its whole state) as it is constructed, and its
# default Layout and style open theirs too. A notebook saved by nbclient keeps every model whose
# comm was ever opened, closed or not, so a Layout made and then replaced by a shared one in
# `lighten` still weighs ~1.2 kB in the file. Inside `built_quietly()` widgets open their comms
# only when the block ends (or as soon as something needs their model id), after the block has
# shared their equal layouts and styles: the replaced ones are never sent.

_pending: dict[int, widgets.Widget] | None = None
_held: dict[int, widgets.Widget] = {}  # built quietly, sent when first needed (`hold`)
_depth = 0
_real_open = widgets.Widget.open
_real_close = widgets.Widget.close
_real_model_id = widgets.Widget.model_id


def _open_later(self: widgets.Widget) -> None:
    if self.comm is None and _pending is not None:
        _pending[id(self)] = self
        return
    _real_open(self)


def _open_when_needed(self: widgets.Widget) -> str:
    if self.comm is None:
        waiting = _pending.pop(id(self), None) if _pending is not None else None
        if waiting is not None or _held.pop(id(self), None) is not None:
            _real_open(self)
            _unpatch_when_idle()
    return str(_real_model_id.fget(self))


def _close_quietly(self: widgets.Widget) -> None:
    if _pending is not None:
        _pending.pop(id(self), None)  # never opened: nothing to send, ever
    _held.pop(id(self), None)
    _real_close(self)
    _unpatch_when_idle()


def _is_pending(widget: Any) -> bool:
    return (_pending is not None and id(widget) in _pending) or id(widget) in _held


def _patch() -> None:
    widgets.Widget.open = _open_later
    widgets.Widget.close = _close_quietly
    widgets.Widget.model_id = property(_open_when_needed)


def _unpatch_when_idle() -> None:
    """ipywidgets' own methods back once nothing waits to be sent."""
    if _pending is None and not _held and widgets.Widget.open is _open_later:
        widgets.Widget.open = _real_open
        widgets.Widget.close = _real_close
        widgets.Widget.model_id = _real_model_id


@atexit.register
def _restore_at_exit() -> None:
    """ipywidgets' own methods back before the interpreter shuts down (held widgets dropped):
    widgets finalized during shutdown must not run this module's code, half torn down."""
    global _pending
    _pending = None
    _held.clear()
    widgets.Widget.open = _real_open
    widgets.Widget.close = _real_close
    widgets.Widget.model_id = _real_model_id


@contextmanager
def built_quietly() -> Iterator[None]:
    """Widgets made inside send their state when the block ends (nested blocks: the outermost).

    Call `lighten` on the tree inside the block: the layouts and styles it replaces are then
    never sent, so they weigh nothing in a saved notebook. A widget closed inside the block is
    never sent either. Anything that needs a widget's model id (a parent sending its children)
    opens it at once, so the block changes when state is sent, never what is sent.
    """
    global _pending, _depth
    if _depth == 0:
        _pending = {}
        _patch()
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            try:
                while _pending:
                    _real_open(_pending.pop(next(iter(_pending))))
            finally:
                _pending = None
                _unpatch_when_idle()


def hold(*roots: Any) -> None:
    """Inside `built_quietly`: the widgets of these trees are sent only when first needed (put
    in a box that is sent, or their model id asked for), not when the block ends; a part shown
    only on demand (the image inputs of the image modes, say) then weighs nothing until shown.
    Keep the trees out of any sent box until then. Outside a block: nothing to do."""
    if _pending is None:
        return
    seen: set[int] = set()
    todo = list(roots)
    while todo:
        widget = todo.pop()
        if not isinstance(widget, widgets.Widget) or id(widget) in seen:
            continue
        seen.add(id(widget))
        if _pending.pop(id(widget), None) is not None:
            _held[id(widget)] = widget
        for name in widget.keys:
            value = getattr(widget, name, None)
            todo.extend(value if isinstance(value, (list, tuple)) else [value])


def alive(widget: Any) -> bool:
    """True until the widget is closed (its comm open, or waiting to open in `built_quietly`)."""
    return widget.comm is not None or _is_pending(widget)


def _canonical(part: Any) -> Any:
    """The shared instance equal to this Layout/style (this one becomes it when first seen)."""
    state = {k: v for k, v in part.get_state().items() if not k.startswith("_")}
    key = (type(part).__name__, json.dumps(state, sort_keys=True, default=str))
    found = _SHARED.get(key)
    if found is not None and alive(found):
        if found is not part:
            part.close()
        return found
    if found is not None:
        _SHARED_IDS.pop(id(found), None)
    _SHARED[key] = part
    _SHARED_IDS[id(part)] = part
    return part


def shared_layout(**css: Any) -> widgets.Layout:
    """One `Layout` model per distinct set of CSS values, shared by every widget using it.

    Every ipywidgets widget otherwise brings its own Layout model (weight in saved notebooks).
    Never change a shared layout's values: give the widget its own Layout instead.
    """
    key = json.dumps(css, sort_keys=True, default=str)
    found = _BY_CSS.get(key)
    if found is not None and alive(found) and is_shared(found):
        return found
    layout: widgets.Layout = _canonical(widgets.Layout(**css))
    _BY_CSS[key] = layout
    return layout


def shared_style(widget_class: type[widgets.Widget], **values: Any) -> Any:
    """The shared style model of `widget_class` (its own style class) with these values."""
    return _canonical(widget_class.style.klass(**values))


def lighten(root: Any) -> None:
    """Share equal Layout and style models across a widget tree (fewer models to save).

    A layout with ``display`` set is left alone: that widget is shown and hidden on its own.
    Inside `built_quietly` the replaced models are never sent.
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
    return _SHARED_IDS.get(id(widget)) is widget


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
