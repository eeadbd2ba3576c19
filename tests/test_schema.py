"""The flux-lora schema: defaults, ranges, person-readable errors, output tolerance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fluxwidget.schema import (
    MAX_SIDE,
    PRESET_SIZES,
    FluxLoraInput,
    FluxLoraOutput,
    InputError,
    LoraWeight,
    allowed_values,
    numeric_range,
    validate_input,
)


def test_defaults_match_fal() -> None:
    params = FluxLoraInput(prompt="a tiger eye")
    assert params.to_payload() == {
        "prompt": "a tiger eye",
        "image_size": "landscape_4_3",
        "num_inference_steps": 28,
        "loras": [],
        "guidance_scale": 3.5,
        "sync_mode": False,
        "num_images": 1,
        "enable_safety_checker": True,
        "output_format": "jpeg",
        "acceleration": "none",
    }
    assert params.pixel_size == (1024, 768)


def test_ranges_are_read_from_the_model() -> None:
    assert numeric_range(FluxLoraInput, "num_images") == (1, 4)
    assert numeric_range(FluxLoraInput, "num_inference_steps") == (1, 50)
    assert numeric_range(FluxLoraInput, "guidance_scale") == (0, 35)
    assert numeric_range(FluxLoraInput, "prompt") is None
    assert allowed_values("num_images") == "a whole number from 1 to 4"
    assert allowed_values("output_format") == "one of 'jpeg', 'png'"


@pytest.mark.parametrize(
    ("garbled", "suggestion"), [("square pro", "square"), ("portrait_3_4", "portrait_4_3")]
)
def test_garbled_seed_document_sizes_list_the_real_presets(garbled: str, suggestion: str) -> None:
    with pytest.raises(InputError) as info:
        validate_input(prompt="x", image_size=garbled)
    (problem,) = info.value.problems
    assert problem.field == "image_size"
    assert problem.value == garbled
    assert f"did you mean {suggestion!r}" in problem.message
    for name, (width, height) in PRESET_SIZES.items():
        assert f"{name} ({width}×{height})" in problem.message


def test_error_names_field_value_and_range() -> None:
    with pytest.raises(InputError) as info:
        validate_input(prompt="x", num_images=7, guidance_scale=-1, output_format="gif")
    text = str(info.value)
    assert "num_images: 7 is not allowed; must be a whole number from 1 to 4" in text
    assert "guidance_scale: -1 is not allowed; must be a number from 0 to 35" in text
    assert "output_format: 'gif'" in text
    assert [p.field for p in info.value.for_field("num_images")] == ["num_images"]


def test_unknown_field_and_missing_prompt() -> None:
    with pytest.raises(InputError) as info:
        validate_input(guidance=3)
    fields = {p.field: p.message for p in info.value.problems}
    assert "unknown field" in fields["guidance"]
    assert "required" in fields["prompt"]


def test_blank_prompt_and_blank_lora_path_rejected() -> None:
    with pytest.raises(InputError) as info:
        validate_input(prompt="   ", loras=[{"path": " ", "scale": 1}])
    assert {p.field for p in info.value.problems} == {"prompt", "loras[0].path"}


def test_custom_size_reports_the_nested_field_only() -> None:
    with pytest.raises(InputError) as info:
        validate_input(prompt="x", image_size={"width": 0, "height": 64})
    assert [p.field for p in info.value.problems] == ["image_size.width"]
    assert f"1 to {MAX_SIDE}" in info.value.problems[0].message


def test_model_input_merges_with_keyword_overrides() -> None:
    base = FluxLoraInput(prompt="x", seed=3)
    merged = validate_input(base, num_images=2)
    assert (merged.seed, merged.num_images, merged.prompt) == (3, 2, "x")
    assert validate_input(base) is base


@given(
    width=st.integers(min_value=1, max_value=MAX_SIDE),
    height=st.integers(min_value=1, max_value=MAX_SIDE),
    steps=st.integers(min_value=1, max_value=50),
    guidance=st.floats(min_value=0, max_value=35, allow_nan=False),
    images=st.integers(min_value=1, max_value=4),
    seed=st.none() | st.integers(min_value=0, max_value=2**70),
    scales=st.lists(st.floats(min_value=-4, max_value=4, allow_nan=False), max_size=3),
)
def test_every_valid_input_round_trips_through_json(
    width: int,
    height: int,
    steps: int,
    guidance: float,
    images: int,
    seed: int | None,
    scales: list[float],
) -> None:
    params = validate_input(
        prompt="p",
        image_size={"width": width, "height": height},
        num_inference_steps=steps,
        guidance_scale=guidance,
        num_images=images,
        seed=seed,
        loras=[{"path": f"repo/l{i}", "scale": s} for i, s in enumerate(scales)],
    )
    again = FluxLoraInput.model_validate(json.loads(json.dumps(params.to_payload())))
    assert again == params
    assert again.pixel_size == (width, height)


@given(
    field=st.sampled_from(["num_inference_steps", "num_images", "guidance_scale"]),
    value=st.one_of(st.integers(min_value=-(10**6), max_value=10**6), st.floats(allow_nan=False)),
)
def test_out_of_range_numbers_always_rejected_with_that_field(field: str, value: Any) -> None:
    low, high = numeric_range(FluxLoraInput, field) or (0, 0)
    integral = field != "guidance_scale"
    in_range = low <= value <= high and (not integral or float(value).is_integer())
    if in_range:
        return
    with pytest.raises(InputError) as info:
        validate_input(prompt="x", **{field: value})
    assert [p.field for p in info.value.problems] == [field]


def test_output_keeps_unknown_fields_and_huge_seeds() -> None:
    body = {
        "images": [{"url": "https://cdn/x.jpeg", "width": 8, "height": 8}, {"url": "data:,"}],
        "timings": {"inference": 2.1},
        "seed": 17454220438242315174123,
        "has_nsfw_concepts": [False, True],
        "prompt": "p",
        "new_field_from_fal": {"x": 1},
    }
    output = FluxLoraOutput.model_validate(json.loads(json.dumps(body)))
    assert output.seed == 17454220438242315174123
    assert output.model_extra == {"new_field_from_fal": {"x": 1}}
    assert (output.is_nsfw(0), output.is_nsfw(1), output.is_nsfw(5)) == (False, True, False)
    assert output.images[1].width is None


def test_lora_paths_are_checked_and_force_is_sent_only_when_set(tmp_path: Path) -> None:
    local = tmp_path / "style.safetensors"
    local.write_bytes(b"weights")
    for good in (
        "https://example.com/lora.safetensors",
        "owner/name",
        "owner/name/sub/file.safetensors",
        str(local),
    ):
        assert LoraWeight(path=good).path == good
    for bad in ("abc", "abc:1", "ftp://example.com/x", "./missing.safetensors", "owner/ name"):
        with pytest.raises(InputError) as info:
            validate_input(prompt="x", loras=[{"path": bad}])
        (problem,) = info.value.problems
        assert problem.field == "loras[0].path"
        assert "an http(s) URL, a Hugging Face repo id (owner/name" in problem.message
        assert "local file" in problem.message
    payload = FluxLoraInput(prompt="x", loras=[{"path": "a/b"}, {"path": "a/c", "force": True}])
    assert payload.to_payload()["loras"] == [
        {"path": "a/b", "scale": 1.0},
        {"path": "a/c", "scale": 1.0, "force": True},
    ]


def test_the_family_models_name_their_endpoints_and_are_chosen_by_their_fields(
    tmp_path: Path,
) -> None:
    from fluxwidget.schema import (
        IMAGE_TO_IMAGE_ID,
        INPAINTING_ID,
        ImageToImageInput,
        InpaintingInput,
        validate_input,
    )

    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n")
    i2i = validate_input(prompt="x", image_url=str(photo))
    assert type(i2i) is ImageToImageInput
    assert i2i.endpoint_id == IMAGE_TO_IMAGE_ID
    assert "image_size" not in i2i.to_payload()  # fal keeps the input image's size
    assert i2i.to_payload()["strength"] == 0.85
    inpaint = validate_input(prompt="x", image_url="https://a.example/p.png", mask_url=str(photo))
    assert type(inpaint) is InpaintingInput
    assert inpaint.endpoint_id == INPAINTING_ID
    with pytest.raises(InputError, match=r"strength: 1\.5 is not allowed; must be a number from"):
        validate_input(prompt="x", image_url="https://a.example/p.png", strength=1.5)
    with pytest.raises(InputError, match=r"image_url: .*existing local image file"):
        validate_input(prompt="x", image_url="not-here.png")
