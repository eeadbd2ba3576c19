"""The base of the image components: one anywidget model holding thumbnails as binary buffers.

ipywidgets re-sends a whole trait on every change, so appending one image to a list trait would
re-send every earlier image. Here each new entry travels ONCE, as a custom message with its
thumbnail as a buffer; the browser adds it to its own copy of the model's state. The Python
traits (``entries``: JSON metadata, ``thumbs``: the JPEG bytes) are written under ipywidgets'
property lock, so they hold the full state for saved notebooks and page reloads without being
sent again over the comm.

A notebook executed without a browser (nbclient, ``jupyter nbconvert --execute``) saves only the
state the kernel sent, never custom messages. So until a browser model says "hello", a changed
component also sends its full state once at the end of each cell that changed it (IPython's
``post_execute``, before the cell's reply, so nbclient records it): one send per cell however
many images arrived. After a hello the browser has what the messages built and nothing is sent
twice (its hello lists the thumbnails it holds).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import anywidget
import traitlets

from ._cells import CellEnd

__all__ = ["ThumbnailWidget", "static_text"]

DEBOUNCE_SECONDS = 0.5
"""State-only changes (a cell's "running 3/28") are written back at most this often."""

_STATIC = Path(__file__).with_name("static")


def static_text(name: str) -> str:
    """The text of a file in ``fluxwidget/ui/static`` (the components' JavaScript and CSS),
    without its comments and indentation: it is saved in every instance's widget state."""
    text = (_STATIC / name).read_text(encoding="utf-8")
    if name.endswith(".js"):
        return strip_js(text)
    if name.endswith(".css"):
        return strip_css(text)
    return text


def strip_css(text: str) -> str:
    """CSS without ``/* */`` comments, leading indentation and blank lines (the stylesheets
    have no strings holding ``/*``)."""
    lines = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL).splitlines()
    return "".join(line.strip() + "\n" for line in lines if line.strip())


def strip_js(text: str) -> str:
    """JavaScript without comment-only lines, leading indentation and blank lines.

    Conservative: every kept line stays a line (automatic semicolons see the same newlines),
    a line that begins inside a template literal or a block comment is kept as it is, and
    trailing comments stay. Strings, template literals (with ``${}`` nesting) and comments are
    scanned to know where each line begins; text the scan cannot follow (a regular expression
    literal, say) comes back unchanged.
    """
    out: list[str] = []
    state = _JsScan()
    for line in text.splitlines():
        if state.inside:
            out.append(line)
        else:
            kept = line.strip()
            if kept and not kept.startswith("//"):
                out.append(kept)
        state.feed(line + "\n")
        if state.failed:
            return text
    if state.inside:
        return text
    return "".join(line + "\n" for line in out)


class _JsScan:
    """Where a JavaScript text is, line by line: code, a string, a template, a comment."""

    def __init__(self) -> None:
        self.stack: list[str] = []  # "`" (template text) and "{" (code inside ${ or braces)
        self.quote = ""  # the quote of the single-line string being read
        self.block = False  # inside /* */
        self.failed = False

    @property
    def inside(self) -> bool:
        """True between the quotes of a template literal or inside a block comment."""
        return self.block or (bool(self.stack) and self.stack[-1] == "`")

    def feed(self, line: str) -> None:
        i, n = 0, len(line)
        while i < n:
            c = line[i]
            nxt = line[i + 1] if i + 1 < n else ""
            if self.block:
                if c == "*" and nxt == "/":
                    self.block = False
                    i += 1
            elif self.quote:
                if c == "\\":
                    i += 1
                elif c == self.quote:
                    self.quote = ""
                elif c == "\n":
                    self.failed = True  # an unterminated string: not ours to rewrite
                    return
            elif self.stack and self.stack[-1] == "`":
                if c == "\\":
                    i += 1
                elif c == "`":
                    self.stack.pop()
                elif c == "$" and nxt == "{":
                    self.stack.append("{")
                    i += 1
            elif c == "/" and nxt == "/":
                return  # the rest of the line is a comment
            elif c == "/" and nxt == "*":
                self.block = True
                i += 1
            elif c == "/":
                prev = line[:i].rstrip()[-1:]
                if not prev or prev in "(,=:[!&|?{};+-*%<>~^":
                    self.failed = True  # a regular expression literal: not scanned
                    return
            elif c in "\"'":
                self.quote = c
            elif c == "`":
                self.stack.append("`")
            elif c == "{":
                self.stack.append("{")
            elif c == "}":
                if not self.stack:
                    self.failed = True
                    return
                self.stack.pop()
            i += 1


class ThumbnailWidget(anywidget.AnyWidget):
    """Entries (JSON dicts with string values) and thumbnails, sent once each.

    Every entry has an ``id`` and a ``thumb`` (index into ``thumbs``, or ``-1``). Messages the
    browser sends (``{"kind": ..., ...}``) go to the handler registered for their kind.
    """

    entries = traitlets.List(traitlets.Dict()).tag(sync=True)
    thumbs = traitlets.List(traitlets.Bytes()).tag(sync=True)
    _snapshot_keys: ClassVar[tuple[str, ...]] = ("entries", "thumbs")
    """The traits a cell's end sends while no browser said hello (subclasses add theirs)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._entries: list[dict[str, Any]] = []
        self._thumbs: list[bytes] = []
        self._index: dict[str, int] = {}
        self._handlers: dict[str, Callable[[dict[str, Any], list[bytes]], None]] = {}
        self._pending: asyncio.TimerHandle | None = None
        self.on_msg(self._received)
        self._on("hello", self._hello)
        self.front_end_seen = False
        """True once a browser model said hello (it holds the state the messages built)."""
        self._unsent = False
        self._cell_end = CellEnd(self._cell_ended)

    # --- adding and changing entries --------------------------------------------------------

    def _add_entry(self, entry: Mapping[str, Any], thumbnail: bytes | None = None) -> None:
        """Append an entry (and its thumbnail): one message to the browser, one buffer."""
        item = dict(entry)
        item["thumb"] = -1
        buffers: list[bytes] = []
        if thumbnail:
            item["thumb"] = len(self._thumbs)
            self._thumbs.append(bytes(thumbnail))
            buffers.append(self._thumbs[-1])
        self._index[str(item["id"])] = len(self._entries)
        self._entries.append(item)
        self.send({"kind": "add", "entry": item}, buffers)
        self._write_state()

    def _update_entry(
        self, entry_id: str, changes: Mapping[str, Any], thumbnail: bytes | None = None
    ) -> None:
        """Change an entry's fields (and give it a thumbnail); only the changes are sent."""
        position = self._index[entry_id]
        item = self._entries[position]
        patch = dict(changes)
        buffers: list[bytes] = []
        if thumbnail:
            if item.get("thumb", -1) >= 0:
                self._thumbs[item["thumb"]] = bytes(thumbnail)
                patch["thumb"] = item["thumb"]
            else:
                patch["thumb"] = len(self._thumbs)
                self._thumbs.append(bytes(thumbnail))
            buffers.append(self._thumbs[patch["thumb"]])
        item.update(patch)
        self.send({"kind": "update", "id": entry_id, "changes": patch}, buffers)
        if buffers:
            self._write_state()
        else:
            self._write_soon()

    def _clear_entries(self) -> None:
        self._entries, self._thumbs, self._index = [], [], {}
        self.send({"kind": "clear"}, [])
        self._write_state()

    def has_entry(self, entry_id: str) -> bool:
        """True when an entry with this id is shown."""
        return entry_id in self._index

    def entry(self, entry_id: str) -> dict[str, Any]:
        """A copy of one entry's fields."""
        return dict(self._entries[self._index[entry_id]])

    @property
    def entry_count(self) -> int:
        """How many entries the component holds."""
        return len(self._entries)

    def _write_soon(self) -> None:
        """Write the state back after a short delay (at once without a running loop)."""
        if self._pending is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write_state()
            return
        self._pending = loop.call_later(DEBOUNCE_SECONDS, self._flush_state)

    def _flush_state(self) -> None:
        """Write any pending state now."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._write_state()

    def _write_state(self) -> None:
        """Put the full state into the traits without sending it (the browser already has it)."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        entries = [dict(item) for item in self._entries]
        thumbs = list(self._thumbs)
        with self._lock_property(entries=entries, thumbs=thumbs):
            self.entries = entries
            self.thumbs = thumbs
        self._state_changed()

    # --- no browser yet: the state at the end of each cell (headless execution) ------------

    def _state_changed(self, *, now: bool = False) -> None:
        """The traits changed without being sent: until a browser says hello, send them at the
        end of the current cell (once, however many changes the cell made), or `now`."""
        if self.front_end_seen or self.comm is None:
            return
        self._unsent = True
        if now:
            self._send_snapshot()
        else:
            self._cell_end.watch()

    def _cell_ended(self) -> None:
        """A cell ended: send the state it changed unless a browser has it already."""
        self._send_snapshot()

    def _send_snapshot(self) -> None:
        """Send the full state now if it changed since the last time and no browser said hello
        (a browser has it from the messages); does nothing otherwise."""
        if self._pending is not None:
            self._flush_state()
        if not self._unsent or self.front_end_seen or self.comm is None:
            return
        self._unsent = False
        self.send_state(list(self._snapshot_keys))

    def close(self) -> None:
        """Close the model (and stop waiting for the end of the cell)."""
        if getattr(self, "_pending", None) is not None:
            self._pending.cancel()  # type: ignore[union-attr]
            self._pending = None
        if getattr(self, "_cell_end", None) is not None:
            self._cell_end.cancel()
        super().close()

    # --- messages from the browser -----------------------------------------------------------

    def _sync_extra(self) -> dict[str, Any]:
        """More state a "sync" carries (subclasses: e.g. the gallery's run order)."""
        return {}

    def _hello(self, content: dict[str, Any], _buffers: list[bytes]) -> None:
        """A browser model started: send the entries and only the thumbnails it lacks.

        Messages sent while the browser was still loading the component are lost; this makes
        up for them (usually nothing to send: the state it started from was complete).
        """
        self.front_end_seen = True
        self._unsent = False
        self._cell_end.cancel()
        have = {int(i) for i in content.get("have", []) if isinstance(i, int)}
        missing = [i for i in range(len(self._thumbs)) if i not in have]
        message = {
            "kind": "sync",
            "entries": [dict(item) for item in self._entries],
            "thumbs": missing,
            **self._sync_extra(),
        }
        self.send(message, [self._thumbs[i] for i in missing])

    def _on(self, kind: str, handler: Callable[[dict[str, Any], list[bytes]], None]) -> None:
        self._handlers[kind] = handler

    def _received(self, _widget: Any, content: Any, buffers: list[Any]) -> None:
        if not isinstance(content, dict):
            return
        handler = self._handlers.get(str(content.get("kind")))
        if handler is not None:
            handler(content, [bytes(b) for b in buffers])
