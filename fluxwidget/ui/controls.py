"""The parameter form: one control per FluxLoraInput field, built from the schema.

Titles, tooltips (field descriptions), defaults, ranges and choices all come from
`fluxwidget.schema`; nothing is typed twice. The form validates on every change with
`validate_input` and shows each problem inline next to its control. A number typed outside
its range is an error there, never clamped (each slider has a text box that holds the value).
Seeds are text: a 64-bit seed does not survive a JavaScript number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args, get_origin

import ipywidgets as widgets
from pydantic.fields import FieldInfo

from ..schema import (
    PRESET_SIZES,
    FieldProblem,
    FluxLoraInput,
    ImageSize,
    InputError,
    LoraWeight,
    numeric_range,
    validate_input,
)
from ._widgets import close_tree, error_html, shared_layout
from .lora_editor import LoraEditor

__all__ = [
    "CUSTOM_SIZE",
    "MAX_SEED",
    "NumberField",
    "ParameterForm",
    "parse_seed",
    "size_label",
    "size_options",
]

MAX_SEED = 2**64 - 1
"""The largest seed the form accepts (fal's seeds are 64-bit)."""

CUSTOM_SIZE = "custom"
"""The image-size dropdown value that shows the width and height fields."""

_FIELDS = FluxLoraInput.model_fields
FORM_WIDTH = "416px"
"""Width of the prompt and of the two-column grid of the smaller fields."""


_LABEL = {"description_width": "84px"}


def size_label(name: str) -> str:
    """``square_hd — 1024×1024``."""
    width, height = PRESET_SIZES[name]
    return f"{name} — {width}×{height}"


def size_options() -> list[tuple[str, str]]:
    """The image-size dropdown's (label, value) pairs: the presets, then Custom…."""
    return [(size_label(name), name) for name in PRESET_SIZES] + [("Custom…", CUSTOM_SIZE)]


def parse_seed(text: str) -> int | str | None:
    """A seed typed as text: None when empty (random), an int when a whole number ≥ 0.

    Anything else is returned unchanged, for validation to name it.
    """
    stripped = text.strip().replace("_", "").replace(",", "")
    if not stripped:
        return None
    if stripped.isdigit():
        return int(stripped)
    return text.strip()


def _common(info: FieldInfo, name: str) -> dict[str, Any]:
    return {"description": info.title or name, "tooltip": info.description, "style": _LABEL}


class NumberField:
    """A slider and a text box for one bounded number; the text box holds the value.

    The slider moves the text; a typed value moves the slider only when it lies in range,
    so an out-of-range value stays as typed and the form names it as an error.
    """

    def __init__(
        self,
        name: str,
        info: FieldInfo,
        value: float,
        bounds: tuple[float, float],
        *,
        integer: bool,
        step: float = 1.0,
    ) -> None:
        self.name = name
        self.bounds = bounds
        self.integer = integer
        slider_type = widgets.IntSlider if integer else widgets.FloatSlider
        text_type = widgets.IntText if integer else widgets.FloatText
        low, high = (int(b) for b in bounds) if integer else bounds
        self.slider = slider_type(
            value=value,
            min=low,
            max=high,
            step=step,
            readout=False,
            continuous_update=True,
            layout=shared_layout(width="240px"),
            **_common(info, name),
        )
        self.text = text_type(
            value=value,
            tooltip=f"{info.description} ({_number(bounds[0])}–{_number(bounds[1])})",
            layout=shared_layout(width="64px"),
        )
        self.description = self.slider.description
        self.tooltip = info.description
        self.slider.observe(self._slid, "value")
        self.text.observe(self._typed, "value")

    @property
    def value(self) -> Any:
        """The value in the text box (may lie outside the range: then the form says so)."""
        return self.text.value

    @value.setter
    def value(self, new: Any) -> None:
        self.text.value = new

    @property
    def min(self) -> float:
        """The lower bound of the slider."""
        return self.slider.min  # type: ignore[no-any-return]

    @property
    def max(self) -> float:
        """The upper bound of the slider."""
        return self.slider.max  # type: ignore[no-any-return]

    def observe(self, handler: Callable[[Any], None], name: str) -> None:
        """Observe the value (the text box)."""
        self.text.observe(handler, name)

    def _slid(self, change: dict[str, Any]) -> None:
        if self.text.value != change["new"]:
            self.text.value = change["new"]

    def _typed(self, change: dict[str, Any]) -> None:
        value = change["new"]
        if self.bounds[0] <= value <= self.bounds[1] and self.slider.value != value:
            self.slider.value = value

    def widgets(self) -> list[widgets.Widget]:
        """The slider, then the text box."""
        return [self.slider, self.text]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def build_control(name: str, info: FieldInfo) -> Any:
    """The control for a plain field (bool, Literal choices, bounded int or float, text)."""
    annotation = info.annotation
    default = info.get_default(call_default_factory=True)
    common = _common(info, name)
    if annotation is bool:
        return widgets.Checkbox(
            value=bool(default), indent=False, layout=shared_layout(width="150px"), **common
        )
    if get_origin(annotation) is Literal:
        return widgets.Dropdown(
            options=list(get_args(annotation)),
            value=default,
            layout=shared_layout(width="196px"),
            **common,
        )
    bounds = numeric_range(FluxLoraInput, name)
    if annotation is int and bounds is not None:
        return NumberField(name, info, default, bounds, integer=True)
    if annotation is float and bounds is not None:
        return NumberField(name, info, default, bounds, integer=False, step=0.1)
    if annotation is str:
        return widgets.Text(value=default or "", **common)
    raise TypeError(f"no control for field {name!r} of type {annotation!r}")


class ParameterForm:
    """Every input of flux-lora as a control, with inline errors and a validity flag."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[list[FieldProblem]], None]] = []
        self._applying = False
        self.problems: list[FieldProblem] = []
        error_layout = shared_layout(margin="0 0 0 4px")
        self.errors: dict[str, widgets.HTML] = {
            name: widgets.HTML(layout=error_layout) for name in _FIELDS
        }

        prompt = _FIELDS["prompt"]
        self.prompt = widgets.Textarea(
            placeholder="Describe the image…",
            rows=3,
            layout=shared_layout(width=FORM_WIDTH),
            **_common(prompt, "prompt"),
        )

        size = _FIELDS["image_size"]
        self.image_size = widgets.Dropdown(
            options=size_options(),
            value=size.get_default(),
            layout=shared_layout(width="300px"),
            **_common(size, "image_size"),
        )
        self.width = self._dimension("width")
        self.height = self._dimension("height")
        self.custom_size = widgets.HBox(
            [self.width, self.height], layout=widgets.Layout(display="none")
        )

        seed = _FIELDS["seed"]
        self.seed = widgets.Text(
            value="",
            placeholder="random",
            layout=shared_layout(width="240px"),
            **_common(seed, "seed"),
        )
        self.seed.tooltip = (
            f"{seed.description} A whole number from 0 to {MAX_SEED} (kept exactly as typed)."
        )
        self.reuse_seed = widgets.Button(
            description="last seed",
            icon="history",
            tooltip="Fix the seed to the one of the last result",
            disabled=True,
            layout=shared_layout(width="100px"),
        )

        self.loras = LoraEditor()
        self.controls: dict[str, Any] = {
            name: build_control(name, info)
            for name, info in _FIELDS.items()
            if name not in {"prompt", "image_size", "seed", "loras"}
        }
        self.controls.update(prompt=self.prompt, image_size=self.image_size, seed=self.seed)
        self.widget = self._layout()

        for control in (self.prompt, self.image_size, self.width, self.height, self.seed):
            control.observe(self._changed, "value")
        for name, control in self.controls.items():
            if name not in {"prompt", "image_size", "seed"}:
                control.observe(self._changed, "value")
        self.loras.on_change(self._changed)
        self._show_custom_size()
        self.validate_inline()

    # --- layout ---------------------------------------------------------------------------

    def _dimension(self, name: str) -> widgets.IntText:
        info = ImageSize.model_fields[name]
        bounds = numeric_range(ImageSize, name)
        tooltip = info.description
        if bounds is not None:
            tooltip = f"{info.description} ({int(bounds[0])}–{int(bounds[1])})"
        return widgets.IntText(
            value=info.default,
            description=info.title or name,
            tooltip=tooltip,
            style=_LABEL,
            layout=shared_layout(width="160px"),
        )

    def _row(self, name: str, *items: widgets.Widget) -> widgets.HBox:
        return widgets.HBox([*items, self.errors[name]], layout=shared_layout(flex_flow="row wrap"))

    def _number_row(self, name: str) -> widgets.HBox:
        field: NumberField = self.controls[name]
        return self._row(name, *field.widgets())

    def _layout(self) -> widgets.VBox:
        c = self.controls
        rows: list[widgets.Widget] = [
            self._row("prompt", self.prompt),
            self._row("image_size", self.image_size, self.custom_size),
            self._number_row("num_inference_steps"),
            self._number_row("guidance_scale"),
            self._number_row("num_images"),
            self._row("seed", self.seed, self.reuse_seed),
            self._row("loras", self.loras.box),
        ]
        placed = {"prompt", "image_size", "num_inference_steps", "guidance_scale", "num_images"}
        placed |= {"seed", "loras"}
        rest = [name for name in _FIELDS if name not in placed]
        # two fixed columns (never floats: Notebook 7 lays it out like JupyterLab)
        cells = [widgets.HBox([c[name], self.errors[name]]) for name in rest]
        rows.append(
            widgets.GridBox(
                cells,
                layout=widgets.Layout(
                    grid_template_columns="196px 216px", grid_gap="0 4px", width=FORM_WIDTH
                ),
            )
        )
        return widgets.VBox(rows)

    # --- values ---------------------------------------------------------------------------

    def raw(self) -> dict[str, Any]:
        """The form's values as a dict, not yet validated."""
        values: dict[str, Any] = {}
        for name in _FIELDS:
            if name == "image_size":
                if self.image_size.value == CUSTOM_SIZE:
                    values[name] = {"width": self.width.value, "height": self.height.value}
                else:
                    values[name] = self.image_size.value
            elif name == "seed":
                values[name] = parse_seed(self.seed.value)
            elif name == "loras":
                values[name] = self.loras.raw()
            else:
                values[name] = self.controls[name].value
        return values

    def params(self) -> FluxLoraInput:
        """The validated input, or InputError (the panel's range checks included)."""
        if self.problems:
            raise InputError(list(self.problems))
        return validate_input(self.raw())

    def apply(self, values: Mapping[str, Any]) -> None:
        """Put validated values (FluxLoraInput attributes) into the controls."""
        self._applying = True
        try:
            for name, value in values.items():
                self._apply_one(name, value)
        finally:
            self._applying = False
        self._changed()

    def _apply_one(self, name: str, value: Any) -> None:
        if name == "image_size":
            if isinstance(value, ImageSize):
                self.width.value, self.height.value = value.width, value.height
                self.image_size.value = CUSTOM_SIZE
            else:
                self.image_size.value = value
        elif name == "seed":
            self.seed.value = "" if value is None else str(value)
        elif name == "loras":
            self.loras.set_loras([LoraWeight.model_validate(v) for v in value])
        else:
            self.controls[name].value = value

    # --- validation -----------------------------------------------------------------------

    def on_change(self, callback: Callable[[list[FieldProblem]], None]) -> None:
        """Call `callback(problems)` after every change, once the form is re-validated."""
        self._callbacks.append(callback)

    @property
    def valid(self) -> bool:
        """True when the current values would be accepted."""
        return not self.problems

    def validate_inline(self) -> list[FieldProblem]:
        """Validate the current values and show each problem next to its control."""
        raw = self.raw()
        try:
            validate_input(raw)
            problems: list[FieldProblem] = []
        except InputError as exc:
            problems = list(exc.problems)
        known = {p.field for p in problems}
        problems += [p for p in self.loras.range_problems() if p.field not in known]
        seed = raw["seed"]
        if isinstance(seed, int) and seed > MAX_SEED and "seed" not in known:
            problems.append(FieldProblem("seed", seed, f"must be at most {MAX_SEED} (64 bits)"))
        self.problems = problems
        by_field: dict[str, list[str]] = {}
        for problem in self.problems:
            top = problem.field.split("[")[0].split(".")[0]
            by_field.setdefault(top, []).append(_inline_message(problem, self.prompt.value))
        for name, label in self.errors.items():
            label.value = "" if name == "loras" else error_html("; ".join(by_field.get(name, [])))
        lora_top = [p for p in self.problems if p.field == "loras"]
        self.errors["loras"].value = error_html("; ".join(p.message for p in lora_top))
        self.loras.show_problems(self.problems)
        return self.problems

    def _show_custom_size(self) -> None:
        self.custom_size.layout.display = None if self.image_size.value == CUSTOM_SIZE else "none"

    def _changed(self, _change: Any = None) -> None:
        if self._applying:
            return
        self._show_custom_size()
        problems = self.validate_inline()
        for callback in self._callbacks:
            callback(problems)

    def close(self) -> None:
        """Close every widget of the form."""
        close_tree(self.widget)


def _inline_message(problem: FieldProblem, prompt: str) -> str:
    if problem.field == "prompt" and not prompt.strip():
        return "required — type what to draw"
    if problem.field == "seed" and isinstance(problem.value, int):
        return problem.message
    if problem.field == "seed":
        value = problem.value
        return f"{value!r} is not a seed: type a whole number ≥ 0, or leave it empty for random"
    if "." in problem.field:
        return f"{problem.field.rsplit('.', 1)[-1]}: {problem.message}"
    return problem.message
