"""One notice for a panel or a sweep shown without a live kernel, instead of ~25 broken links.

ipywidgets marks every view whose model has no live comm (a notebook reopened without its
kernel, a kernel restarted) with ``jupyter-widgets-disconnected``, whose red chain-broken icon
takes room beside every control. `mark_snapshot_root` gives a widget tree's root a class whose
CSS hides those icons inside it, and puts a `LiveNotice` at its top: hidden while the kernel is
connected, else "Not live — run the cell to use it.", with the controls left as a still
snapshot (inert) and the parts useful only live (key box, banner, sweep buttons) hidden.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import anywidget
import traitlets

from ._thumbs import static_text
from ._widgets import lighten

__all__ = ["NOT_LIVE_TEXT", "LiveNotice", "mark_snapshot_root"]

NOT_LIVE_TEXT = "Not live — run the cell to use it."
ROOT_CLASS = "fw-snapshot-root"
LIVE_ONLY_CLASS = "fw-live-only"


class LiveNotice(anywidget.AnyWidget):
    """Shows `text` when its view has no live kernel (and marks its root as not live)."""

    _esm = static_text("live_notice.js")
    _css = static_text("live_notice.css")
    text = traitlets.Unicode(NOT_LIVE_TEXT).tag(sync=True)


def mark_snapshot_root(root: Any, live_only: Iterable[Any] = ()) -> LiveNotice:
    """Put a `LiveNotice` first in `root` (a Box) and mark it and its `live_only` parts."""
    root.add_class(ROOT_CLASS)
    for part in live_only:
        part.add_class(LIVE_ONLY_CLASS)
    notice = LiveNotice()
    lighten(notice)  # its Layout: the shared empty one
    root.children = (notice, *root.children)
    return notice
