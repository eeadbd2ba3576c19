"""The parameter form: one control per FluxLoraInput field, built from the schema.

Titles, tooltips (field descriptions), defaults, ranges and choices all come from
`fluxwidget.schema`; nothing is typed twice. The form validates on every change with
`validate_input` and shows each problem inline next to its control.
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
from ._widgets import close_tree, error_html
from .lora_editor import LoraEditor

__all__ = ["CUSTOM_SIZE", "ParameterForm", "size_label", "size_options"]

CUSTOM_SIZE = "custom"
"""The image-size dropdown value that shows the width and height fields."""

_FIELDS = FluxLoraInput.model_fields
_LABEL_STYLE = {"description_width": "110px"}
_WIDE = "560px"
_SLIDER = "460px"


def size_label(name: str) -> str:
    """``square_hd — 1024×1024``."""
    width, height = PRESET_SIZES[name]
    return f"{name} — {width}×{height}"


def size_options() -> list[tuple[str, str]]:
    """The image-size dropdown's (label, value) pairs: the presets, then Custom…."""
    return [(size_label(name), name) for name in PRESET_SIZES] + [("Custom…", CUSTOM_SIZE)]


def _common(info: FieldInfo, name: str) -> dict[str, Any]:
    return {"description": info.title or name, "tooltip": info.description, "style": _LABEL_STYLE}


def build_control(name: str, info: FieldInfo) -> widgets.Widget:
    """The control for a plain field (bool, Literal choices, bounded int or float, text)."""
    annotation = info.annotation
    default = info.get_default(call_default_factory=True)
    common = _common(info, name)
    if annotation is bool:
        return widgets.Checkbox(value=bool(default), indent=False, **common)
    if get_origin(annotation) is Literal:
        return widgets.Dropdown(options=list(get_args(annotation)), value=default, **common)
    bounds = numeric_range(FluxLoraInput, name)
    if annotation is int and bounds is not None:
        return widgets.IntSlider(
            value=default,
            min=int(bounds[0]),
            max=int(bounds[1]),
            continuous_update=False,
            layout=widgets.Layout(width=_SLIDER),
            **common,
        )
    if annotation is float and bounds is not None:
        return widgets.FloatSlider(
            value=default,
            min=bounds[0],
            max=bounds[1],
            step=0.1,
            readout_format=".1f",
            continuous_update=False,
            layout=widgets.Layout(width=_SLIDER),
            **common,
        )
    if annotation is str:
        return widgets.Text(value=default or "", **common)
    raise TypeError(f"no control for field {name!r} of type {annotation!r}")


class ParameterForm:
    """Every input of flux-lora as a control, with inline errors and a validity flag."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[list[FieldProblem]], None]] = []
        self._applying = False
        self.problems: list[FieldProblem] = []
        self.errors: dict[str, widgets.HTML] = {name: widgets.HTML() for name in _FIELDS}

        prompt = _FIELDS["prompt"]
        self.prompt = widgets.Textarea(
            placeholder="Describe the image…",
            rows=3,
            layout=widgets.Layout(width=_WIDE),
            **_common(prompt, "prompt"),
        )

        size = _FIELDS["image_size"]
        default_size = size.get_default()
        self.image_size = widgets.Dropdown(
            options=size_options(),
            value=default_size,
            layout=widgets.Layout(width="340px"),
            **_common(size, "image_size"),
        )
        self.width = self._dimension("width")
        self.height = self._dimension("height")

        seed = _FIELDS["seed"]
        self.seed = widgets.IntText(value=0, disabled=seed.default is None, **_common(seed, "seed"))
        self.random_seed = widgets.Checkbox(
            value=seed.default is None,
            description="random",
            indent=False,
            tooltip="Leave the seed out: the server picks a random one",
            layout=widgets.Layout(width="90px"),
        )
        self.reuse_seed = widgets.Button(
            description="reuse last seed",
            icon="history",
            tooltip="Fix the seed to the one of the last result",
            disabled=True,
        )

        self.loras = LoraEditor()
        self.controls: dict[str, widgets.Widget] = {
            name: build_control(name, info)
            for name, info in _FIELDS.items()
            if name not in {"prompt", "image_size", "seed", "loras"}
        }
        self.controls.update(prompt=self.prompt, image_size=self.image_size, seed=self.seed)
        self.widget = self._layout()

        for control in (self.prompt, self.image_size, self.width, self.height, self.seed):
            control.observe(self._changed, "value")
        self.random_seed.observe(self._random_toggled, "value")
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
            style={"description_width": "50px"},
            layout=widgets.Layout(width="150px"),
        )

    def _row(self, name: str, *items: widgets.Widget) -> widgets.HBox:
        return widgets.HBox([*items, self.errors[name]])

    def _layout(self) -> widgets.VBox:
        c = self.controls
        rows: list[widgets.Widget] = [
            self._row("prompt", self.prompt),
            self._row("image_size", self.image_size, self.width, self.height),
            self._row("num_inference_steps", c["num_inference_steps"]),
            self._row("guidance_scale", c["guidance_scale"]),
            self._row("num_images", c["num_images"]),
            self._row("seed", self.seed, self.random_seed, self.reuse_seed),
            widgets.HTML(f"<b>{_FIELDS['loras'].title}</b>"),
            self._row("loras", self.loras.box),
        ]
        placed = {"prompt", "image_size", "num_inference_steps", "guidance_scale", "num_images"}
        placed |= {"seed", "loras"}
        rest = [self._row(name, c[name]) for name in _FIELDS if name not in placed]
        rows.append(widgets.HBox(rest, layout=widgets.Layout(flex_flow="row wrap")))
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
                values[name] = None if self.random_seed.value else self.seed.value
            elif name == "loras":
                values[name] = self.loras.raw()
            else:
                values[name] = self.controls[name].value
        return values

    def params(self) -> FluxLoraInput:
        """The validated input, or InputError."""
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
            if value is not None:
                self.seed.value = value
            self.random_seed.value = value is None
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
        try:
            validate_input(self.raw())
            self.problems = []
        except InputError as exc:
            self.problems = list(exc.problems)
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

    def _random_toggled(self, change: Any) -> None:
        self.seed.disabled = bool(change["new"])
        self._changed()

    def _show_custom_size(self) -> None:
        display = None if self.image_size.value == CUSTOM_SIZE else "none"
        self.width.layout.display = display
        self.height.layout.display = display

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
    if "." in problem.field:
        return f"{problem.field.rsplit('.', 1)[-1]}: {problem.message}"
    return problem.message
