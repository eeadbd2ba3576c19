"""The parameter form: controls from the schema, inline errors, set() and params."""

from __future__ import annotations

import ipywidgets as widgets
import pytest

from fluxwidget.schema import (
    LORA_SCALE_UI_RANGE,
    PRESET_SIZES,
    FluxLoraInput,
    ImageSize,
    InputError,
    LoraWeight,
    numeric_range,
)
from fluxwidget.ui.controls import CUSTOM_SIZE, ParameterForm

FIELDS = FluxLoraInput.model_fields


@pytest.fixture
def form() -> ParameterForm:
    built = ParameterForm()
    yield built
    built.close()


def test_every_field_has_a_control_with_schema_title_tooltip_and_default(
    form: ParameterForm,
) -> None:
    assert set(form.controls) | {"loras"} == set(FIELDS)
    for name, control in form.controls.items():
        info = FIELDS[name]
        assert control.description == info.title, name
        assert control.tooltip == info.description, name
    defaults = form.raw()
    for name, info in FIELDS.items():
        if name != "prompt":
            assert defaults[name] == info.get_default(call_default_factory=True), name


def test_ranges_and_choices_come_from_the_schema(form: ParameterForm) -> None:
    steps = form.controls["num_inference_steps"]
    assert isinstance(steps, widgets.IntSlider)
    assert (steps.min, steps.max) == (1, 50) == numeric_range(FluxLoraInput, "num_inference_steps")
    guidance = form.controls["guidance_scale"]
    assert isinstance(guidance, widgets.FloatSlider)
    assert (guidance.min, guidance.max, guidance.step) == (0, 35, 0.1)
    images = form.controls["num_images"]
    assert (images.min, images.max) == (1, 4)
    assert list(form.controls["output_format"].options) == ["jpeg", "png"]
    assert list(form.controls["acceleration"].options) == ["none", "regular"]
    assert isinstance(form.controls["sync_mode"], widgets.Checkbox)
    assert isinstance(form.controls["enable_safety_checker"], widgets.Checkbox)
    assert [value for _, value in form.image_size.options] == [*PRESET_SIZES, CUSTOM_SIZE]


def test_custom_size_shows_width_and_height(form: ParameterForm) -> None:
    form.prompt.value = "x"
    assert form.width.layout.display == "none"
    form.image_size.value = CUSTOM_SIZE
    assert form.width.layout.display is None
    form.width.value, form.height.value = 640, 360
    assert form.params().image_size == ImageSize(width=640, height=360)


def test_invalid_values_are_shown_inline(form: ParameterForm) -> None:
    assert [p.field for p in form.problems] == ["prompt"]
    assert "required" in form.errors["prompt"].value
    form.prompt.value = "a tiger"
    assert form.valid
    assert form.errors["prompt"].value == ""
    form.random_seed.value = False
    form.seed.value = -1
    assert not form.valid
    assert "-1 is not allowed" in form.errors["seed"].value
    form.image_size.value = CUSTOM_SIZE
    form.width.value = 0
    assert "width: 0 is not allowed" in form.errors["image_size"].value
    with pytest.raises(InputError) as info:
        form.params()
    assert {p.field for p in info.value.problems} == {"seed", "image_size.width"}


def test_lora_editor_rows(form: ParameterForm) -> None:
    form.prompt.value = "x"
    row = form.loras.add()
    assert (row.scale.min, row.scale.max) == LORA_SCALE_UI_RANGE
    assert row.path.tooltip == LoraWeight.model_fields["path"].description
    assert not form.valid
    assert "path" in row.error.value
    row.path.value = "owner/style-lora"
    row.scale.value = 0.8
    second = form.loras.add("https://example.com/b.safetensors", 1.5)
    assert form.valid
    assert form.params().loras == [
        LoraWeight(path="owner/style-lora", scale=0.8),
        LoraWeight(path="https://example.com/b.safetensors", scale=1.5),
    ]
    row.remove.click()
    assert row.path.comm is None  # closed, not leaked
    assert form.params().loras == [LoraWeight(path="https://example.com/b.safetensors", scale=1.5)]
    assert form.loras.rows == [second]


def test_apply_round_trips_every_field(form: ParameterForm) -> None:
    params = FluxLoraInput(
        prompt="a fox",
        image_size=(800, 600),
        num_inference_steps=12,
        seed=42,
        loras=[LoraWeight(path="a/b", scale=6.0)],  # beyond the usual slider range
        guidance_scale=7.5,
        sync_mode=True,
        num_images=3,
        enable_safety_checker=False,
        output_format="png",
        acceleration="regular",
    )
    form.apply({name: getattr(params, name) for name in FIELDS})
    assert form.params() == params
    assert form.image_size.value == CUSTOM_SIZE
    assert form.loras.rows[0].scale.max == 6.0
    form.apply({"seed": None, "image_size": "portrait_16_9"})
    assert form.random_seed.value
    assert form.seed.disabled
    assert form.params().seed is None
    assert form.params().pixel_size == (576, 1024)
