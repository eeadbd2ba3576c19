"""Keys: whether one is configured, the banner, and a key box that never keeps the key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ._widgets import esc

__all__ = ["KeyBox", "banner_html"]


def banner_html(mode: str, base_url: str, endpoint: str, *, emulator: bool = False) -> str:
    """The banner: the emulator (placeholder images; how to set a key), fal, or another host.

    `emulator` marks a given client that points at an emulator (its images are placeholders).
    """
    if mode == "emulator":
        return (
            '<div style="background:#fff4ce;border:1px solid #e0c060;padding:6px 10px;'
            'border-radius:4px">'
            "<b>Offline: running on the built-in emulator</b> — images are placeholders, "
            "nothing is sent to fal and nothing costs. To use fal, set <code>FAL_KEY</code> "
            "before starting the kernel (<code>export FAL_KEY=…</code>), pass "
            "<code>FluxPanel(api_key=…)</code>, or paste a key below.</div>"
        )
    where = "fal" if mode == "fal" else "a custom client"
    if emulator:
        return (
            '<div style="background:#fff4ce;border:1px solid #e0c060;padding:6px 10px;'
            f'border-radius:4px">Running on {where} that points at an <b>emulator</b> '
            f"(<code>{esc(base_url)}</code>): images are placeholders, nothing is sent to fal "
            "and nothing costs.</div>"
        )
    return (
        '<div style="background:#e6f4ea;border:1px solid #8bc59b;padding:6px 10px;'
        f'border-radius:4px">Running on {where}: <code>{esc(endpoint)}</code> at '
        f"<code>{esc(base_url)}</code></div>"
    )


class KeyBox:
    """A password field read and cleared at once; the key goes to `on_key`, nowhere else."""

    def __init__(self, on_key: Callable[[str], None]) -> None:
        self._on_key = on_key
        self.used = False
        self.field = widgets.Password(
            placeholder="paste a fal key, then Enter",
            description="fal key",
            tooltip="Used for this panel only; never stored in the notebook",
            continuous_update=False,
        )
        self.button = widgets.Button(description="Use key", icon="key")
        self.message = widgets.HTML()
        self.field.observe(self._typed, "value")
        self.button.on_click(lambda _button: self._take())
        self.box = widgets.HBox([self.field, self.button, self.message])

    def _typed(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._take()

    def _take(self) -> None:
        key = self.field.value.strip()
        self.field.value = ""
        if not key:
            if not self.used:
                self.message.value = "Paste a key first."
            return
        self._on_key(key)
        self.used = True
        self.message.value = "Key set for this panel (kept in Python only)."
