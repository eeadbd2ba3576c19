"""The parameter form: one control per FluxLoraInput field, built from the schema.

Titles, tooltips (field descriptions), defaults, ranges and choices all come from
`fluxwidget.schema`; nothing is typed twice. The form validates on every change with
`validate_input` and shows each problem inline next to its control. A number typed outside
its range is an error there, never clamped (each slider has a text box that holds the value).
Seeds are text: a 64-bit seed does not survive a JavaScript number.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args, get_origin

import ipywidgets as widgets
from pydantic.fields import FieldInfo

from ..schema import (
    PRESET_SIZES,
    FieldProblem,
    FluxLoraInput,
    ImageSize,
    ImageToImageInput,
    InpaintingInput,
    InputError,
    LoraWeight,
    numeric_range,
    validate_input,
)
from ._widgets import close_tree, error_html, hold, lighten, shared_layout
from .image_input import ImagePicker, StoreUpload
from .lora_editor import LoraEditor
from .mask_painter import MaskPainter

__all__ = [
    "CUSTOM_SIZE",
    "INPUT_MODES",
    "MAX_SEED",
    "SAME_SIZE",
    "NumberField",
    "ParameterForm",
    "mode_of",
    "parse_seed",
    "size_label",
    "size_options",
]

MAX_SEED = 2**64 - 1
"""The largest seed the form accepts (fal's seeds are 64-bit)."""

CUSTOM_SIZE = "custom"
"""The image-size dropdown value that shows the width and height fields."""

SAME_SIZE = "same"
"""The image-size dropdown value (image → image, inpaint) for "the input image's size"."""

INPUT_MODES: dict[str, type[FluxLoraInput]] = {
    "text-to-image": FluxLoraInput,
    "image-to-image": ImageToImageInput,
    "inpainting": InpaintingInput,
}
"""The panel's input modes: each one a member of the flux-lora family (its model and endpoint)."""
MODE_LABELS = (
    ("text → image", "text-to-image"),
    ("image → image", "image-to-image"),
    ("inpaint", "inpainting"),
)
_MODE_TIPS = (
    "Text to image (fal-ai/flux-lora)",
    "Start from an input image (fal-ai/flux-lora/image-to-image)",
    "Repaint the masked part of an input image (fal-ai/flux-lora/inpainting)",
)
IMAGE_FIELDS = ("image_url", "mask_url")
"""The fields given by an ImagePicker (a path, URL or data: URI)."""


def mode_of(model: type[FluxLoraInput]) -> str:
    """The input mode of a model of the flux-lora family (its closest parent's mode)."""
    for mode, member in reversed(INPUT_MODES.items()):
        if issubclass(model, member):
            return mode
    return "text-to-image"


_FIELDS = InpaintingInput.model_fields
"""Every field of the family (the inpainting input holds them all): one control each."""
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


def size_default() -> str:
    """The text-to-image default size preset."""
    return str(FluxLoraInput.model_fields["image_size"].default)


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
        value = change["new"]
        if not self.integer:
            value = round(value, 9)  # a browser slider snaps to 0.8500000000000001
        if self.text.value != value:
            self.text.value = value

    def _typed(self, change: dict[str, Any]) -> None:
        value = change["new"]
        if self.bounds[0] <= value <= self.bounds[1] and self.slider.value != value:
            self.slider.value = value

    def widgets(self) -> list[widgets.Widget]:
        """The slider, then the text box."""
        return [self.slider, self.text]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def build_control(name: str, info: FieldInfo, model: type[FluxLoraInput] = FluxLoraInput) -> Any:
    """The control for a plain field (bool, Literal choices, bounded int or float, text) of
    `model` (the ranges are read from it)."""
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
    bounds = numeric_range(model, name)
    if annotation is int and bounds is not None:
        return NumberField(name, info, default, bounds, integer=True)
    if annotation is float and bounds is not None:
        step = 0.01 if bounds[1] - bounds[0] <= 1 else 0.1  # strength: 0.01–1
        return NumberField(name, info, default, bounds, integer=False, step=step)
    if annotation is str:
        return widgets.Text(value=default or "", **common)
    raise TypeError(f"no control for field {name!r} of type {annotation!r}")


class ParameterForm:
    """Every input of flux-lora as a control, with inline errors and a validity flag."""

    def __init__(self, *, store: StoreUpload | None = None) -> None:
        """`store(picker, data, name)`: what to do with an image uploaded in the browser (the
        panel writes it into its run folder and puts the path into the picker)."""
        self._callbacks: list[Callable[[list[FieldProblem]], None]] = []
        self._applying = False
        self.problems: list[FieldProblem] = []
        error_layout = shared_layout(margin="0 0 0 4px")
        self.errors: dict[str, widgets.HTML] = {
            name: widgets.HTML(layout=error_layout)
            for name in _FIELDS
            if name not in IMAGE_FIELDS  # a picker has its own error line
        }

        prompt = FluxLoraInput.model_fields["prompt"]
        self.prompt = widgets.Textarea(
            placeholder="Describe the image…",
            rows=3,
            layout=shared_layout(width=FORM_WIDTH),
            **_common(prompt, "prompt"),
        )

        size = FluxLoraInput.model_fields["image_size"]
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

        seed = FluxLoraInput.model_fields["seed"]
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

        self.mode = widgets.ToggleButtons(
            options=MODE_LABELS,
            value="text-to-image",
            tooltips=list(_MODE_TIPS),
            style=widgets.ToggleButtonsStyle(button_width="auto"),
            layout=shared_layout(margin="0 0 4px 0"),
        )
        self.pickers: dict[str, ImagePicker] = {
            name: ImagePicker(
                name, _FIELDS[name].title or name, _FIELDS[name].description or "", store=store
            )
            for name in IMAGE_FIELDS
        }
        for name, picker in self.pickers.items():
            self.errors[name] = picker.error  # one error line per field: the picker's
        self.mask_painter = MaskPainter()
        self.painted_mask: str | None = None
        """The mask file the painter wrote last (cleared when the input image changes)."""

        self.loras = LoraEditor()
        self.controls: dict[str, Any] = {
            name: build_control(name, info, InpaintingInput)
            for name, info in _FIELDS.items()
            if name not in {"prompt", "image_size", "seed", "loras", *IMAGE_FIELDS}
        }
        self.controls.update(prompt=self.prompt, image_size=self.image_size, seed=self.seed)
        self.controls.update(self.pickers)
        self.image_row = widgets.VBox(
            [self.pickers["image_url"].box, self._number_row("strength")],
            layout=widgets.Layout(display="none"),
        )
        self.mask_row = widgets.VBox(
            [self.pickers["mask_url"].box, self.mask_painter],
            layout=widgets.Layout(display="none"),
        )
        # The image modes' rows join the form when an image mode is first chosen: until then
        # (in a panel built quietly) none of their models is sent or saved.
        lighten(self.image_row)
        lighten(self.mask_row)
        hold(self.image_row, self.mask_row)
        self.widget = self._layout()

        for control in (self.prompt, self.image_size, self.width, self.height, self.seed):
            control.observe(self._changed, "value")
        for name, control in self.controls.items():
            if name not in {"prompt", "image_size", "seed", *IMAGE_FIELDS}:
                control.observe(self._changed, "value")
        self.pickers["image_url"].on_change(self._image_changed)
        self.pickers["mask_url"].show_preview = False  # the painter shows the mask
        self.pickers["mask_url"].on_change(self._mask_changed)
        self.mode.observe(self._mode_switched, "value")
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
            self.mode,
            self._row("prompt", self.prompt),
            self._row("image_size", self.image_size, self.custom_size),
            self._number_row("num_inference_steps"),
            self._number_row("guidance_scale"),
            self._number_row("num_images"),
            self._row("seed", self.seed, self.reuse_seed),
            self._row("loras", self.loras.box),
        ]
        placed = {"prompt", "image_size", "num_inference_steps", "guidance_scale", "num_images"}
        placed |= {"seed", "loras", "strength", *IMAGE_FIELDS}
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

    @property
    def model(self) -> type[FluxLoraInput]:
        """The input model of the chosen mode (FluxLoraInput, ImageToImageInput, ...)."""
        return INPUT_MODES[self.mode.value]

    def raw(self) -> dict[str, Any]:
        """The form's values (the chosen mode's fields) as a dict, not yet validated."""
        values: dict[str, Any] = {}
        for name in self.model.model_fields:
            if name == "image_size":
                if self.image_size.value == SAME_SIZE:
                    values[name] = None
                elif self.image_size.value == CUSTOM_SIZE:
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
        return validate_input(self.raw(), model=self.model)

    def apply(self, values: Mapping[str, Any], *, mode: str | None = None) -> None:
        """Put validated values (input model attributes) into the controls; `mode` switches the
        input mode first (one of INPUT_MODES)."""
        self._applying = True
        try:
            if mode is not None:
                self.mode.value = mode
            for name, value in values.items():
                self._apply_one(name, value)
        finally:
            self._applying = False
        self._changed()

    def _apply_one(self, name: str, value: Any) -> None:
        if name == "image_size":
            if value is None:
                same = self.model is not FluxLoraInput
                self.image_size.value = SAME_SIZE if same else size_default()
            elif isinstance(value, ImageSize):
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
            validate_input(raw, model=self.model)
            problems: list[FieldProblem] = []
        except InputError as exc:
            problems = list(exc.problems)
        problems = self._image_problems(problems)
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

    def _image_problems(self, problems: list[FieldProblem]) -> list[FieldProblem]:
        """The pickers' own findings (a file that is not an image, a missing file) replace the
        schema's generic message; an inpainting mask must have the image's size."""
        fields = self.model.model_fields
        out = list(problems)
        for name, picker in self.pickers.items():
            if name not in fields:
                continue
            if picker.problem is not None:
                out = [p for p in out if p.field != name]
                out.append(FieldProblem(name, picker.value, picker.problem))
            elif not picker.value:
                out = [p for p in out if p.field != name]
                what = "a mask" if name == "mask_url" else "an image"
                out.append(FieldProblem(name, "", f"required — choose {what}"))
        image, mask = self.pickers["image_url"].image, self.pickers["mask_url"].image
        if (
            "mask_url" in fields
            and image is not None
            and mask is not None
            and (image.width, image.height) != (mask.width, mask.height)
        ):
            message = (
                f"the mask is {mask.width}×{mask.height}, the image "
                f"{image.width}×{image.height}: they must be the same size"
            )
            out.append(FieldProblem("mask_url", self.pickers["mask_url"].value, message))
        return out

    def _mode_switched(self, change: dict[str, Any]) -> None:
        image_mode = change["new"] != "text-to-image"
        if image_mode and self.image_row not in self.widget.children:
            rows = list(self.widget.children)
            self.widget.children = (*rows[:2], self.image_row, self.mask_row, *rows[2:])
        self.image_row.layout.display = None if image_mode else "none"
        self.mask_row.layout.display = None if change["new"] == "inpainting" else "none"
        current = self.image_size.value
        options = size_options()
        if image_mode:
            options = [("Input image's size", SAME_SIZE), *options]
            if change["old"] == "text-to-image" and current == size_default():
                current = SAME_SIZE  # fal's default for image → image: the input's size
        elif current == SAME_SIZE:
            current = size_default()
        self.image_size.options = options
        self.image_size.value = current
        self._changed()

    def _image_changed(self, picker: ImagePicker) -> None:
        """A new input image: the painter paints over it (its mask starts empty)."""
        image = picker.image
        painter = self.mask_painter
        if image is None:
            message = "Paint a mask over a local or uploaded image (a URL is not shown here)."
            painter.unset_image(message if picker.value else "")
        elif painter.image != image.thumbnail or painter.size != (image.width, image.height):
            painter.set_image(image.thumbnail, image.width, image.height)
        else:
            self._changed()
            return
        mask = self.pickers["mask_url"]
        if self.painted_mask is not None and mask.value == self.painted_mask:
            self.painted_mask = None
            mask.value = ""  # the painted mask belonged to the previous image
        self._changed()

    def _mask_changed(self, picker: ImagePicker) -> None:
        """A mask given as a file (not the one painted here): the painter shows it to edit."""
        image = picker.image
        painter = self.mask_painter
        if (
            image is not None
            and picker.value != self.painted_mask
            and painter.size == (image.width, image.height)
        ):
            with contextlib.suppress(ValueError, OSError):
                painter.load_mask(picker.read_bytes())
        self._changed()

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
        self.mask_painter.close()
        close_tree(self.image_row)  # not among the form's rows until an image mode was chosen
        close_tree(self.mask_row)
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
