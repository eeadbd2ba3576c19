"""The panel's Sweep section: up to three axes over the panel's own parameters, cost, start.

Each axis is a field (from the panel's parameters, its LoRAs included) and values in the range
syntax (``2,3.5,5``, ``1-5 (+2)``, ``0.4-1.2 [3]``). The cell count and the cost estimate update
as you type; before anything is typed a quiet hint says what to do; an invalid axis or cell
shows its error and disables Start. Start runs `sweep()`
on the panel's client; its live grid appears below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import ipywidgets as widgets

from ..errors import FieldProblem, InputError
from ..schema import FluxLoraInput
from ..sweeps.axes import PROMPT_SR, Mode, SeedMode, SweepPlan, plan_sweep
from ..sweeps.cost import estimate_cost
from ..sweeps.run import SweepRun
from ._widgets import built_quietly, error_html, esc, lighten, muted, shared_layout
from .sweep import sweep

__all__ = ["HINT", "SweepForm", "axis_fields"]

_NONE = "—"
HINT = "Choose an axis and type its values to see the cells and the estimated cost."
"""The summary before any value is typed (errors are shown only once there is input)."""
_PLACEHOLDERS = {
    "guidance_scale": "2,3.5,5",
    "num_inference_steps": "10-40 [4]",
    "seed": "1-4",
    "image_size": "square,landscape_4_3,768x512",
    PROMPT_SR: "tiger,lion,owl (first value is in the prompt)",
}


def axis_fields(params: FluxLoraInput | None) -> list[str]:
    """The fields an axis can take here: scalar inputs, each LoRA's scale and path, Prompt S/R."""
    skip = {"loras", "prompt", "sync_mode"}
    fields = [name for name in FluxLoraInput.model_fields if name not in skip]
    loras = params.loras if params is not None else []
    for index in range(len(loras)):
        fields += [f"loras[{index}].scale", f"loras[{index}].path"]
    return [*fields, PROMPT_SR]


class SweepForm:
    """Axis rows, mode and seeds, the plan's size and cost, Start, and the running sweep."""

    def __init__(
        self,
        params: Callable[[], FluxLoraInput],
        client: Callable[[], Any],
        *,
        opener: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._params = params
        self._client = client
        self._opener = opener
        self.run: SweepRun | None = None
        row = shared_layout(width="auto")
        self.fields = [
            widgets.Dropdown(description=name, options=[_NONE], layout=shared_layout(width="260px"))
            for name in ("X", "Y", "Z")
        ]
        self.values = [
            widgets.Text(placeholder="values", layout=shared_layout(width="320px"))
            for _ in range(3)
        ]
        self.mode = widgets.Dropdown(
            description="Mode", options=[("grid (every pair)", "grid"), ("zip (paired)", "zip")]
        )
        self.seed_mode = widgets.Dropdown(
            description="Seeds",
            options=[
                ("one seed for every cell", "fixed"),
                ("a new seed per cell", "per_cell"),
                ("one seed per row", "per_row"),
            ],
        )
        self.summary = widgets.HTML(layout=row)
        self.start_button = widgets.Button(
            description="Start sweep",
            icon="th",
            button_style="primary",
            disabled=True,
            layout=shared_layout(width="140px", min_width="140px", flex="0 0 auto"),
        )
        self.output = widgets.VBox(layout=row)
        rows = [
            widgets.HBox([field, value], layout=row)
            for field, value in zip(self.fields, self.values, strict=True)
        ]
        self.widget = widgets.VBox(
            [
                widgets.HTML(
                    muted(
                        "Sweep the form's parameters: pick up to three axes and type "
                        "their values (2,3.5,5 · 1-5 (+2) · 0.4-1.2 [3])."
                    )
                ),
                *rows,
                widgets.HBox([self.mode, self.seed_mode], layout=row),
                widgets.HBox([self.start_button, self.summary], layout=row),
                self.output,
            ],
            layout=row,
        )
        for control in (*self.fields, *self.values, self.mode, self.seed_mode):
            control.observe(lambda _change: self.refresh(), "value")
        for field, value in zip(self.fields, self.values, strict=True):
            field.observe(
                lambda change, box=value: setattr(
                    box, "placeholder", _PLACEHOLDERS.get(str(change["new"]), "values")
                ),
                "value",
            )
        self.start_button.on_click(lambda _button: self.start())
        self.refresh()

    def axes(self) -> list[str | None]:
        """The axes as ``field=values`` text (None where no field is chosen)."""
        chosen: list[str | None] = []
        for field, value in zip(self.fields, self.values, strict=True):
            name = str(field.value)
            chosen.append(f"{name}={value.value}" if name != _NONE else None)
        return chosen

    def plan(self) -> SweepPlan:
        """The plan of the form's axes over the panel's parameters (InputError when invalid)."""
        x, y, z = self.axes()
        if x is None and y is None and z is None:
            problem = FieldProblem("axis", None, "choose at least one axis and type its values")
            raise InputError([problem])
        mode = cast(Mode, self.mode.value)
        seeds = cast(SeedMode, self.seed_mode.value)
        return plan_sweep(self._params(), x, y, z, mode=mode, seed_mode=seeds)

    def refresh(self) -> None:
        """Update the field lists, the cell count and cost, and whether Start is possible."""
        try:
            params: FluxLoraInput | None = self._params()
        except InputError:
            params = None
        options = [_NONE, *axis_fields(params)]
        for field in self.fields:
            if list(field.options) != options:
                keep = field.value if field.value in options else _NONE
                field.options = options
                field.value = keep
        if not any(str(box.value).strip() for box in self.values):
            self.summary.value = muted(HINT)  # nothing typed yet: a hint, not an error
            self.start_button.disabled = True
            return
        try:
            plan = self.plan()
        except InputError as exc:
            self.summary.value = error_html(str(exc))
            self.start_button.disabled = True
            return
        nx, ny, nz = plan.shape
        estimate = estimate_cost(plan.inputs)
        self.summary.value = muted(
            esc(f"{len(plan.cells)} cells ({nx} × {ny} × {nz}) · {estimate.describe()}")
        )
        self.start_button.disabled = False

    def start(self) -> SweepRun | None:
        """Start the sweep; its live grid replaces the previous one below the form."""
        try:
            plan = self.plan()
        except InputError as exc:
            self.summary.value = error_html(str(exc))
            return None
        x, y, z = plan.axes
        base = plan.base.model_dump()
        self.run = sweep(
            base,
            x,
            y,
            z,
            mode=plan.mode,
            seed_mode=plan.seed_mode,
            client=self._client(),
        )
        from .sweep_view import SweepView

        with built_quietly():  # only the models left after lighten() are sent
            view = SweepView(self.run, opener=self._opener)
            lighten(view.widget)
        self.output.children = (view.widget,)
        return self.run
