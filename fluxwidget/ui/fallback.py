"""Static fallbacks: what a notebook shows where no widget manager runs.

GitHub, nbviewer without widget state, ``jupyter nbconvert --to html`` of a notebook saved
without widget state, and any reader that drops ``application/vnd.jupyter.widget-view+json``
show the output's ``text/html`` (or ``text/plain``) instead. The panel and the live sweep put a
small snapshot there next to the widget view: the newest thumbnails as inline
``data:image/jpeg;base64`` images, with their labels and parameters as escaped HTML, capped in
size (newest first, then "… and N more").

`LiveOutput` shows a widget as two outputs: the widget view (with a ``text/plain`` line), and
next to it the fallback (``text/html``) under a ``display_id``. Only the fallback is updated
(``update_display``): at the end of the running cell (IPython's ``post_execute``, once however
many changes the cell made, so headless execution records it before the cell's reply), and
`UPDATE_DELAY` seconds after a change on the kernel's loop (once for a burst: the results of a
Generate click, a sweep running on). nbclient applies an update to an output of any cell;
JupyterLab and Notebook 7 route it by its display id, until a page reload. The widget view is
never updated: a front end re-creates a widget view it is sent again, losing what the user
had open (a selected cell, the large view, focus). Where the widget is drawn, the stylesheet of
the "not live" notice (`live_notice.py`) hides the fallback output of the same cell.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import images
from ._cells import CellEnd
from ._widgets import esc

__all__ = [
    "FALLBACK_MAX_BYTES",
    "FALLBACK_THUMB_SIDE",
    "FallbackItem",
    "LiveOutput",
    "fallback_html",
    "small_data_uri",
]

FALLBACK_MAX_BYTES = 60_000
"""At most this much HTML per output (thumbnails included)."""
FALLBACK_THUMB_SIDE = 72
"""Longer side of a fallback thumbnail (JPEG q40: about 1.5–3 kB for a photo-like image)."""
FALLBACK_QUALITY = 40
IMG_STYLE = "max-width:72px;max-height:72px;display:block"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
UPDATE_DELAY = 0.5
"""Seconds from a change to its update when the kernel's loop is free (a burst sends once)."""
NOT_LIVE = "Not live — run the cell to use it. (A snapshot as of the last cell that updated it.)"

_SMALL: dict[bytes, str] = {}
"""Fallback data URIs by digest of their thumbnail (made once each)."""


def small_data_uri(thumb: bytes, side: int = FALLBACK_THUMB_SIDE) -> str:
    """A small JPEG ``data:`` URI of a thumbnail (re-encoded; "" if it cannot be decoded)."""
    try:
        data = images.thumbnail(thumb, side, FALLBACK_QUALITY)
    except (OSError, ValueError):
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


@dataclass
class FallbackItem:
    """One group of the fallback: a heading line and its images (newest first)."""

    heading: str
    thumbs: Sequence[bytes] = ()
    captions: Sequence[str] = ()
    details: str = ""
    uris: list[str] = field(default_factory=list, repr=False)


def _uri(thumb: bytes) -> str:
    key = hashlib.blake2b(thumb, digest_size=16).digest()
    found = _SMALL.get(key)
    if found is None:
        found = small_data_uri(thumb)
        if len(_SMALL) > 2000:
            _SMALL.clear()
        _SMALL[key] = found
    return found


_STYLE = (
    "font-family:sans-serif;font-size:12px;color:#222;border:1px solid #ddd;"
    "border-radius:4px;padding:6px;max-width:980px"
)


def fallback_html(
    title: str,
    items: Iterable[FallbackItem],
    *,
    note: str = NOT_LIVE,
    max_bytes: int = FALLBACK_MAX_BYTES,
) -> str:
    """The snapshot as HTML: a title, the note, then groups (newest first) until `max_bytes`.

    Every text is escaped; images are inline JPEG ``data:`` URIs.
    """
    head = (
        f'<div class="fluxwidget-fallback" style="{_STYLE}">'
        f"<div><b>{esc(title)}</b> "
        f'<span style="color:#666">{esc(note)}</span></div>'
    )
    tail = "</div>"
    parts: list[str] = []
    used = len(head) + len(tail)
    pending = list(items)
    for shown, item in enumerate(pending):
        tiles = []
        for n, thumb in enumerate(item.thumbs):
            uri = _uri(thumb) if thumb else ""
            caption = item.captions[n] if n < len(item.captions) else ""
            # src first (and no alt: the caption below says it), as sanitizers reorder
            img = f'<img src="{uri}" style="{IMG_STYLE}">' if uri else ""
            tiles.append(
                '<figure style="margin:0 4px 4px 0;display:inline-block;vertical-align:top;'
                f'max-width:72px">{img}'
                f'<figcaption style="font-size:11px;color:#444;overflow-wrap:anywhere">'
                f"{esc(caption)}</figcaption></figure>"
            )
        block = (
            '<div style="margin-top:6px">'
            f'<div style="overflow-wrap:anywhere">{esc(item.heading)}</div>'
            + (
                f'<div style="color:#666;overflow-wrap:anywhere">{esc(item.details)}</div>'
                if item.details
                else ""
            )
            + f"<div>{''.join(tiles)}</div></div>"
        )
        if used + len(block) > max_bytes and parts:
            rest = len(pending) - shown
            parts.append(f'<div style="color:#666">… and {rest} more</div>')
            break
        parts.append(block)
        used += len(block)
    return head + "".join(parts) + tail


def _bundle_of(widget: Any) -> dict[str, Any]:
    render = getattr(widget, "_repr_mimebundle_", None)
    found = render() if render is not None else None
    if isinstance(found, tuple):
        found = found[0]
    return dict(found or {})


class LiveOutput:
    """A widget shown with a static fallback beside it, kept current with ``update_display``.

    `widget` returns the widget to show (or None once closed); `html` and `plain` the fallback.
    """

    def __init__(
        self,
        widget: Callable[[], Any],
        html: Callable[[], str],
        plain: Callable[[], str],
    ) -> None:
        self._widget = widget
        self._html = html
        self._plain = plain
        self.display_id = f"fluxwidget-{uuid.uuid4().hex}"
        """The display id of the fallback output (the one updated)."""
        self.displayed = False
        self.updates = 0
        """How many display updates were sent (tests and benchmarks)."""
        self._dirty = False
        self._cell_end = CellEnd(self._send_if_changed)
        self._timer: asyncio.TimerHandle | None = None

    def view_bundle(self) -> dict[str, Any]:
        """The widget's mime bundle with a ``text/plain`` line (no fallback)."""
        widget = self._widget()
        data = _bundle_of(widget) if widget is not None else {}
        data["text/plain"] = self._plain()
        data.pop("text/html", None)
        return data

    def fallback_bundle(self) -> dict[str, Any]:
        """The fallback alone: ``text/html``."""
        return {"text/html": self._html()}

    def bundle(self) -> dict[str, Any]:
        """Both in one bundle (for ``_repr_mimebundle_``: front ends that display one output)."""
        return {**self.view_bundle(), **self.fallback_bundle()}

    def display(self) -> None:
        """Display the widget view, then the fallback (with the display id updates go to)."""
        from IPython.display import display

        self.displayed = True
        display(self.view_bundle(), raw=True)  # type: ignore[no-untyped-call]
        display(self.fallback_bundle(), raw=True, display_id=self.display_id)  # type: ignore[no-untyped-call]

    def changed(self, *, now: bool = False) -> None:
        """The state changed: update the fallback soon (or `now`).

        Soon is the end of the running cell, or `UPDATE_DELAY` seconds later on the kernel's
        loop, whichever comes first: one update for many changes either way.
        """
        if not self.displayed:
            return
        self._dirty = True
        if now:
            self.update()
            return
        self._cell_end.watch()
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop runs (a plain script): the cell end or nothing
                return
            self._timer = loop.call_later(UPDATE_DELAY, self._send_if_changed)

    def _send_if_changed(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._cell_end.cancel()
        if self._dirty:
            self.update()

    def update(self) -> None:
        """Send the current fallback to every output showing it."""
        self._dirty = False
        if not self.displayed or self._widget() is None:
            return
        from IPython.display import update_display

        update_display(self.fallback_bundle(), raw=True, display_id=self.display_id)  # type: ignore[no-untyped-call]
        self.updates += 1

    def cancel(self) -> None:
        """Stop a pending update (the widget is closing)."""
        self._dirty = False
        self._cell_end.cancel()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def grid_fallback_html(
    title: str,
    status: str,
    axes: dict[str, Any],
    entries: Sequence[dict[str, Any]],
    thumbs: Sequence[bytes],
    *,
    note: str = NOT_LIVE,
    max_bytes: int = FALLBACK_MAX_BYTES,
) -> str:
    """A sweep grid as a static HTML table per Z value: axis labels, each cell's thumbnail and
    state text (escaped). Past `max_bytes` the remaining cells show their text only."""
    x_values = list(axes.get("x_values") or [""])
    y_values = list(axes.get("y_values") or [""])
    z_values = list(axes.get("z_values") or [""])
    by_coords = {(int(e.get("x", 0)), int(e.get("y", 0)), int(e.get("z", 0))): e for e in entries}
    used = 0
    left_out = 0
    tables = []
    cell_style = "border:1px solid #ddd;padding:2px;vertical-align:top;max-width:132px"
    for z, z_value in enumerate(z_values):
        rows = []
        header = "".join(f'<th style="{cell_style}">{esc(v)}</th>' for v in x_values)
        corner = f"{axes.get('y_label', '')} \\ {axes.get('x_label', '')}".strip(" \\")
        rows.append(f'<tr><th style="{cell_style}">{esc(corner)}</th>{header}</tr>')
        for y, y_value in enumerate(y_values):
            cells = []
            for x in range(len(x_values)):
                entry = by_coords.get((x, y, z))
                if entry is None:
                    cells.append(f'<td style="{cell_style}"></td>')
                    continue
                img = ""
                index = int(entry.get("thumb", -1))
                if 0 <= index < len(thumbs) and thumbs[index]:
                    uri = _uri(thumbs[index])
                    if used + len(uri) <= max_bytes:
                        used += len(uri)
                        img = f'<img src="{uri}" style="{IMG_STYLE}">'
                    else:
                        left_out += 1
                text = esc(entry.get("text", entry.get("state", "")))
                cells.append(
                    f'<td style="{cell_style}">{img}'
                    f'<div style="font-size:11px;overflow-wrap:anywhere">{text}</div></td>'
                )
            rows.append(f'<tr><th style="{cell_style}">{esc(y_value)}</th>{"".join(cells)}</tr>')
        caption = (
            f"<caption>{esc(axes.get('z_label', ''))} = {esc(z_value)}</caption>"
            if axes.get("z_label")
            else ""
        )
        tables.append(
            f'<table style="border-collapse:collapse;margin:4px 0">{caption}{"".join(rows)}</table>'
        )
    more = f'<div style="color:#666">… and {left_out} more images</div>' if left_out else ""
    return (
        f'<div class="fluxwidget-fallback" style="{_STYLE}">'
        f'<div><b>{esc(title)}</b> <span style="color:#666">{esc(note)}</span></div>'
        f'<div style="overflow-wrap:anywhere">{esc(status)}</div>{"".join(tables)}{more}</div>'
    )
