"""Being called once at the end of the running IPython cell (``post_execute``).

Two parts of the ui save work for the end of a cell, once however many changes the cell made:
the image components send their full state for headless execution (`_thumbs.py`), and
`LiveOutput` sends its static fallback (`fallback.py`). `CellEnd` is that watch, written once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

__all__ = ["CellEnd"]


class CellEnd:
    """Calls `callback` once at the end of the running cell after each `watch()`."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback
        self._shell: Any = None

    @property
    def watching(self) -> bool:
        """True while a cell end is awaited."""
        return self._shell is not None

    def watch(self) -> bool:
        """Be called at the end of the running cell (once however often this is called).

        Returns False outside IPython, where no cell ends (nothing is registered)."""
        if self._shell is not None:
            return True
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - ipywidgets depends on IPython
            return False
        shell = get_ipython()
        events = getattr(shell, "events", None)
        if events is None:
            return False
        events.register("post_execute", self._ended)
        self._shell = shell
        return True

    def cancel(self) -> None:
        """Stop waiting (nothing is called)."""
        shell, self._shell = self._shell, None
        if shell is not None:
            with contextlib.suppress(ValueError):
                shell.events.unregister("post_execute", self._ended)

    def _ended(self) -> None:
        self.cancel()
        self._callback()
