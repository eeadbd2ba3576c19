"""The LoRA list editor: rows of path + scale slider + remove, and an add button."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets

from ..schema import LORA_SCALE_UI_RANGE, FieldProblem, LoraWeight
from ._widgets import close_tree, error_html

__all__ = ["LoraEditor", "LoraRow"]

_PATH = LoraWeight.model_fields["path"]
_SCALE = LoraWeight.model_fields["scale"]


class LoraRow:
    """One LoRA: a path text, a scale slider, a remove button and an inline error."""

    def __init__(self, path: str = "", scale: float | None = None) -> None:
        value = float(_SCALE.default if scale is None else scale)
        low, high = LORA_SCALE_UI_RANGE
        self.path = widgets.Text(
            value=path,
            placeholder="https://…/lora.safetensors or owner/repo",
            description=_PATH.title or "path",
            tooltip=_PATH.description,
            layout=widgets.Layout(width="420px"),
        )
        self.scale = widgets.FloatSlider(
            value=value,
            min=min(low, value),
            max=max(high, value),
            step=0.05,
            readout_format=".2f",
            description=_SCALE.title or "scale",
            tooltip=_SCALE.description,
            continuous_update=False,
        )
        self.remove = widgets.Button(
            description="✕", tooltip="Remove this LoRA", layout=widgets.Layout(width="36px")
        )
        self.error = widgets.HTML()
        self.box = widgets.HBox([self.path, self.scale, self.remove, self.error])

    def raw(self) -> dict[str, Any]:
        """The row as a dict, unvalidated."""
        return {"path": self.path.value, "scale": self.scale.value}

    def set_scale(self, value: float) -> None:
        """Set the scale, widening the slider when the value lies outside the usual range."""
        self.scale.min = min(LORA_SCALE_UI_RANGE[0], value)
        self.scale.max = max(LORA_SCALE_UI_RANGE[1], value)
        self.scale.value = value


class LoraEditor:
    """Edit `loras`: a list of rows, each with its own inline error."""

    def __init__(self) -> None:
        self.rows: list[LoraRow] = []
        self._callbacks: list[Callable[[], None]] = []
        self.add_button = widgets.Button(
            description="Add LoRA", icon="plus", tooltip="Add a LoRA row"
        )
        self.add_button.on_click(lambda _button: self.add())
        self.rows_box = widgets.VBox()
        self.box = widgets.VBox([self.rows_box, self.add_button])

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback()` whenever a row is added, removed or edited."""
        self._callbacks.append(callback)

    def _changed(self, _change: Any = None) -> None:
        for callback in self._callbacks:
            callback()

    def add(self, path: str = "", scale: float | None = None, *, notify: bool = True) -> LoraRow:
        """Append a row and return it."""
        row = LoraRow(path, scale)
        row.path.observe(self._changed, "value")
        row.scale.observe(self._changed, "value")
        row.remove.on_click(lambda _button: self.remove(row))
        self.rows.append(row)
        self.rows_box.children = (*self.rows_box.children, row.box)
        if notify:
            self._changed()
        return row

    def remove(self, row: LoraRow, *, notify: bool = True) -> None:
        """Drop a row and close its widgets."""
        self.rows.remove(row)
        self.rows_box.children = tuple(r.box for r in self.rows)
        close_tree(row.box)
        if notify:
            self._changed()

    def raw(self) -> list[dict[str, Any]]:
        """All rows as dicts, unvalidated."""
        return [row.raw() for row in self.rows]

    def set_loras(self, loras: Sequence[LoraWeight]) -> None:
        """Replace all rows (reusing existing ones) without notifying per row."""
        while len(self.rows) > len(loras):
            self.remove(self.rows[-1], notify=False)
        while len(self.rows) < len(loras):
            self.add(notify=False)
        for row, lora in zip(self.rows, loras, strict=True):
            row.path.value = lora.path
            row.set_scale(lora.scale)

    def show_problems(self, problems: Sequence[FieldProblem]) -> None:
        """Show each ``loras[i]...`` problem next to row i; clear the others."""
        by_row: dict[int, list[str]] = {}
        for problem in problems:
            index = _row_index(problem.field)
            if index is not None:
                leaf = problem.field.rsplit(".", 1)[-1]
                by_row.setdefault(index, []).append(f"{leaf}: {problem.message}")
        for index, row in enumerate(self.rows):
            messages = by_row.get(index, [])
            row.error.value = error_html("; ".join(messages)) if messages else ""

    def close(self) -> None:
        """Close every widget of the editor."""
        close_tree(self.box)


def _row_index(field: str) -> int | None:
    if not field.startswith("loras["):
        return None
    try:
        return int(field[len("loras[") :].split("]", 1)[0])
    except ValueError:
        return None
