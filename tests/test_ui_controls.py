"""The parameter form: controls from the schema, inline errors, set() and params."""

from __future__ import annotations

import ipywidgets as widgets
import pytest

from fluxwidget.schema import (
    LORA_SCALE_UI_RANGE,
    PRESET_SIZES,
    FluxLoraInput,
    ImageSize,
    InpaintingInput,
    InputError,
    LoraWeight,
    numeric_range,
)
from fluxwidget.ui.controls import CUSTOM_SIZE, NumberField, ParameterForm, parse_seed

FIELDS = FluxLoraInput.model_fields


@pytest.fixture
def form() -> ParameterForm:
    built = ParameterForm()
    yield built
    built.close()


def test_every_field_has_a_control_with_schema_title_tooltip_and_default(
    form: ParameterForm,
) -> None:
    family = InpaintingInput.model_fields  # every mode's fields (image, strength, mask)
    assert set(form.controls) | {"loras"} == set(family)
    for name, control in form.controls.items():
        info = FIELDS.get(name) or family[name]
        assert control.description == info.title, name
        assert control.tooltip.startswith(info.description), name
    defaults = form.raw()
    for name, info in FIELDS.items():
        if name != "prompt":
            assert defaults[name] == info.get_default(call_default_factory=True), name


def test_ranges_and_choices_come_from_the_schema(form: ParameterForm) -> None:
    steps = form.controls["num_inference_steps"]
    assert isinstance(steps, NumberField)
    assert isinstance(steps.slider, widgets.IntSlider)
    assert (steps.min, steps.max) == (1, 50) == numeric_range(FluxLoraInput, "num_inference_steps")
    guidance = form.controls["guidance_scale"]
    assert isinstance(guidance.slider, widgets.FloatSlider)
    assert (guidance.min, guidance.max, guidance.slider.step) == (0, 35, 0.1)
    images = form.controls["num_images"]
    assert (images.min, images.max) == (1, 4)
    assert list(form.controls["output_format"].options) == ["jpeg", "png"]
    assert list(form.controls["acceleration"].options) == ["none", "regular"]
    assert isinstance(form.controls["sync_mode"], widgets.Checkbox)
    assert isinstance(form.controls["enable_safety_checker"], widgets.Checkbox)
    assert [value for _, value in form.image_size.options] == [*PRESET_SIZES, CUSTOM_SIZE]


def test_custom_size_shows_width_and_height(form: ParameterForm) -> None:
    form.prompt.value = "x"
    assert form.custom_size.layout.display == "none"
    form.image_size.value = CUSTOM_SIZE
    assert form.custom_size.layout.display is None
    form.width.value, form.height.value = 640, 360
    assert form.params().image_size == ImageSize(width=640, height=360)


def test_invalid_values_are_shown_inline(form: ParameterForm) -> None:
    assert [p.field for p in form.problems] == ["prompt"]
    assert "required" in form.errors["prompt"].value
    form.prompt.value = "a tiger"
    assert form.valid
    assert form.errors["prompt"].value == ""
    form.seed.value = "-1"
    assert not form.valid
    assert "is not a seed" in form.errors["seed"].value
    form.image_size.value = CUSTOM_SIZE
    form.width.value = 0
    assert "width: 0 is not allowed" in form.errors["image_size"].value
    with pytest.raises(InputError) as info:
        form.params()
    assert {p.field for p in info.value.problems} == {"seed", "image_size.width"}


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("num_inference_steps", 80, "80 is not allowed; must be a whole number from 1 to 50"),
        ("num_images", 7, "7 is not allowed; must be a whole number from 1 to 4"),
        ("guidance_scale", 40.0, "40.0 is not allowed; must be a number from 0 to 35"),
    ],
)
def test_a_typed_value_outside_the_range_is_an_error_not_clamped(
    form: ParameterForm, field: str, typed: float, message: str
) -> None:
    form.prompt.value = "x"
    control = form.controls[field]
    slider_before = control.slider.value
    control.text.value = typed  # what the browser sends when the number is typed
    assert control.value == typed  # kept as typed
    assert control.slider.value == slider_before  # the slider does not clamp it
    assert message in form.errors[field].value
    assert not form.valid
    with pytest.raises(InputError):
        form.params()
    control.slider.value = 3  # moving the slider fixes it
    assert control.value == 3
    assert form.valid


def test_lora_scale_outside_the_panel_range_is_an_error(form: ParameterForm) -> None:
    form.prompt.value = "x"
    row = form.loras.add("owner/style")
    row.scale_text.value = 9.0
    assert row.scale.value == 1.0  # not clamped to 4
    assert not form.valid
    assert "scale: 9 is outside the panel&#x27;s range 0–4" in row.error.value
    row.scale.value = 2.5
    assert row.scale_text.value == 2.5
    assert form.valid


def test_seeds_are_text_and_exact(form: ParameterForm) -> None:
    form.prompt.value = "x"
    assert isinstance(form.seed, widgets.Text)
    assert form.params().seed is None  # empty means random
    form.seed.value = "5361202149059313751"
    assert form.params().seed == 5361202149059313751
    form.apply({"seed": 18446744073709551615})
    assert form.seed.value == "18446744073709551615"
    assert form.params().seed == 2**64 - 1
    form.seed.value = "18446744073709551616"
    assert "at most 18446744073709551615" in form.errors["seed"].value
    form.seed.value = "12ab"
    assert "is not a seed" in form.errors["seed"].value
    form.seed.value = " 42 "
    assert form.params().seed == 42
    assert parse_seed("") is None
    assert parse_seed("1_000") == 1000
    assert parse_seed("x") == "x"


def test_lora_editor_rows(form: ParameterForm) -> None:
    form.prompt.value = "x"
    row = form.loras.add()
    assert (row.scale.min, row.scale.max) == LORA_SCALE_UI_RANGE
    assert row.path.tooltip == LoraWeight.model_fields["path"].description
    assert not form.valid
    assert "path" in row.error.value
    row.path.value = "not a path"
    assert "http(s) URL, a Hugging Face repo id" in row.error.value
    row.path.value = "owner/style-lora"
    row.scale.value = 0.8
    row.force.value = True
    second = form.loras.add("https://example.com/b.safetensors", 1.5)
    assert form.valid
    assert form.params().loras == [
        LoraWeight(path="owner/style-lora", scale=0.8, force=True),
        LoraWeight(path="https://example.com/b.safetensors", scale=1.5),
    ]
    assert "force" not in form.params().to_payload()["loras"][1]  # sent only when set
    row.remove.click()
    assert row.path.comm is None  # closed, not leaked
    assert form.params().loras == [LoraWeight(path="https://example.com/b.safetensors", scale=1.5)]
    assert form.loras.rows == [second]


def test_apply_round_trips_every_field(form: ParameterForm) -> None:
    params = FluxLoraInput(
        prompt="a fox",
        image_size=(800, 600),
        num_inference_steps=12,
        seed=5361202149059313751,
        loras=[LoraWeight(path="a/b", scale=3.5, force=True)],
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
    assert form.loras.rows[0].force.value
    form.apply({"seed": None, "image_size": "portrait_16_9"})
    assert form.seed.value == ""
    assert form.params().seed is None
    assert form.params().pixel_size == (576, 1024)


def test_controls_share_layout_and_style_models(form: ParameterForm) -> None:
    steps, images = form.controls["num_inference_steps"], form.controls["num_images"]
    assert steps.slider.layout is images.slider.layout
    assert steps.text.layout is images.text.layout
