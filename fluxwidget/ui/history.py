"""The history of runs in one panel: parameters, small thumbnails, and Restore."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets

from ..schema import FluxLoraInput, ImageSize
from ._widgets import close_tree, esc
from .records import RunRecord

__all__ = ["HistoryView", "restore_values", "summary"]

MAX_ENTRIES = 50


def summary(record: RunRecord) -> str:
    """One line per run: number, prompt, size, steps, guidance, seed, LoRAs, time."""
    params = record.params
    prompt = params.prompt if len(params.prompt) <= 60 else params.prompt[:59] + "…"
    size = params.image_size
    size_text = f"{size.width}×{size.height}" if isinstance(size, ImageSize) else size
    parts = [
        f"#{record.number}",
        repr(prompt),
        str(size_text),
        f"{params.num_inference_steps} steps",
        f"guidance {params.guidance_scale:g}",
        "random seed" if record.seed is None else f"seed {record.seed}",
    ]
    if params.loras:
        parts.append(", ".join(f"{lora.path} ×{lora.scale:g}" for lora in params.loras))
    parts.append(f"{len(record.images)} image" + ("" if len(record.images) == 1 else "s"))
    parts.append(f"{record.elapsed:.1f} s")
    return " · ".join(parts)


def restore_values(record: RunRecord) -> FluxLoraInput:
    """The run's input with the seed the server used, so Generate makes the same images."""
    if record.seed is None:
        return record.params
    return record.params.model_copy(update={"seed": record.seed})


class HistoryView:
    """Newest first; each entry restores its parameters into the form with one click."""

    def __init__(self, on_restore: Callable[[RunRecord], None]) -> None:
        self.records: list[RunRecord] = []
        self._rows: list[widgets.HBox] = []
        self._on_restore = on_restore
        self.box = widgets.VBox()

    def add(self, record: RunRecord) -> widgets.Button:
        """Add a run; returns its Restore button."""
        restore = widgets.Button(
            description="Restore", icon="undo", tooltip="Put this run's parameters into the form"
        )
        restore.on_click(lambda _button: self._on_restore(record))
        thumbs = [
            widgets.Image(value=image.thumbnail, format="jpeg", width=48)
            for image in record.images[:4]
        ]
        text = widgets.HTML(f'<span style="font-size:90%">{esc(summary(record))}</span>')
        row = widgets.HBox([restore, *thumbs, text])
        self.records.insert(0, record)
        self._rows.insert(0, row)
        while len(self._rows) > MAX_ENTRIES:
            self.records.pop()
            close_tree(self._rows.pop())
        self.box.children = tuple(self._rows)
        return restore

    def close(self) -> None:
        """Close every widget of the history."""
        for row in self._rows:
            close_tree(row)
        close_tree(self.box)
