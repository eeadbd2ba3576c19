"""Axes and cells: expansion order, seeds, Prompt S/R, LoRA fields, validation, JSON."""

from __future__ import annotations

import json
import random

import pytest

from fluxwidget.errors import SweepError
from fluxwidget.schema import FluxLoraInput, ImageSize, InputError, LoraWeight
from fluxwidget.sweeps.axes import (
    Axis,
    SweepPlan,
    parse_axis,
    plan_sweep,
    to_axis,
)

LORA = "https://example.test/style.safetensors"
BASE = FluxLoraInput(prompt="a red cat on a sofa", loras=[LoraWeight(path=LORA, scale=1.0)])


def test_parse_axis_for_the_shell() -> None:
    axis = parse_axis("guidance_scale=2,3.5,5")
    assert axis == Axis("guidance_scale", (2.0, 3.5, 5.0), "guidance_scale")
    lora = parse_axis("loras[0].scale=0.4-1.2 [3]")
    assert lora.values == (0.4, 0.8, 1.2)
    assert lora.label == "loras[0].scale"
    assert parse_axis("num_inference_steps=1-50 [4]").values == (1, 17, 34, 50)
    assert parse_axis("image_size=square_hd, 1024x768").values == ("square_hd", "1024x768")
    assert parse_axis(axis.text) == axis


def test_python_values_and_tuples() -> None:
    assert to_axis(("seed", range(3))) == Axis("seed", (0, 1, 2))
    assert Axis.of("seed", "0-2") == Axis.of("seed", range(3))
    assert to_axis(("guidance_scale", [2, 3.5], "CFG")) == Axis("guidance_scale", (2.0, 3.5), "CFG")
    size = Axis("image_size", ((512, 768), {"width": 64, "height": 32}, ImageSize(), "square"))
    assert size.values == ("512x768", "64x32", "512x512", "square")
    with pytest.raises(InputError, match="each value must be a whole number"):
        Axis("num_inference_steps", (1.5,))
    with pytest.raises(InputError, match="not an axis"):
        parse_axis("guidance_scale 2,3")
    with pytest.raises(InputError, match="did you mean 'guidance_scale'"):
        parse_axis("guidance=2,3")


def test_grid_order_x_fastest_then_y_then_z() -> None:
    plan = plan_sweep(
        BASE,
        "guidance_scale=2,3.5,5",
        "loras[0].scale=0.4-1.2 [3]",
        ("num_inference_steps", [10, 20]),
        seed=42,
    )
    assert plan.shape == (3, 3, 2)
    assert len(plan.cells) == 18
    assert [c.id for c in plan.cells[:3]] == ["c0000", "c0001", "c0002"]
    cell = plan.cells[1 + 3 * 2 + 9 * 1]
    assert cell.coords == (1, 2, 1)
    assert cell.axis_values == {
        "guidance_scale": 3.5,
        "loras[0].scale": 1.2,
        "num_inference_steps": 20,
    }
    assert plan.cell_at(1, 2, 1) is cell
    assert plan.inputs[cell.index] is cell.input
    assert cell.input.guidance_scale == 3.5
    assert cell.input.loras[0].scale == 1.2
    assert cell.input.loras[0].path == LORA
    assert cell.input.num_inference_steps == 20
    assert cell.input.prompt == BASE.prompt
    assert {c.seed for c in plan.cells} == {42}
    assert BASE.loras[0].scale == 1.0  # the base is not changed


def test_zip_pairs_values_and_needs_equal_lengths() -> None:
    plan = plan_sweep(BASE, "guidance_scale=2,3", "num_inference_steps=10,20", mode="zip")
    assert plan.shape == (2, 1, 1)
    assert [
        (c.coords, c.input.guidance_scale, c.input.num_inference_steps) for c in plan.cells
    ] == [
        ((0, 0, 0), 2.0, 10),
        ((1, 0, 0), 3.0, 20),
    ]
    with pytest.raises(InputError, match="guidance_scale has 2, num_inference_steps has 3"):
        plan_sweep(BASE, "guidance_scale=2,3", "num_inference_steps=1-3", mode="zip")


def test_prompt_search_replace() -> None:
    plan = plan_sweep(BASE, 'prompt_sr=red,blue,"green, dark"')
    assert [c.input.prompt for c in plan.cells] == [
        "a red cat on a sofa",
        "a blue cat on a sofa",
        "a green, dark cat on a sofa",
    ]
    with pytest.raises(InputError, match="'dog' is not in the prompt"):
        plan_sweep(BASE, "prompt_sr=dog,wolf")


def test_two_prompt_sr_axes_need_their_own_labels() -> None:
    with pytest.raises(InputError, match="two axes have this label"):
        plan_sweep(BASE, "prompt_sr=red,blue", "prompt_sr=cat,dog")
    plan = plan_sweep(BASE, "prompt_sr=red,blue", Axis("prompt_sr", ("cat", "dog"), "animal"))
    assert plan.cells[3].input.prompt == "a blue dog on a sofa"


def test_lora_paths_and_custom_sizes() -> None:
    other = "owner/other-lora"
    plan = plan_sweep(BASE, ("loras[0].path", [LORA, other]), "image_size=square,1024x768")
    assert plan.cells[1].input.loras[0].path == other
    assert plan.cells[3].input.image_size == ImageSize(width=1024, height=768)
    assert plan.cells[0].input.image_size == "square"


def test_lora_index_beyond_the_base_is_a_clear_error() -> None:
    with pytest.raises(InputError, match=r"has 1 LoRA; add loras\[1\]"):
        plan_sweep(BASE, "loras[1].scale=1,2")
    with pytest.raises(InputError, match="has no LoRAs"):
        plan_sweep({"prompt": "x"}, "loras[0].scale=1,2")


def test_every_invalid_cell_is_listed_by_its_axis_values() -> None:
    with pytest.raises(SweepError) as info:
        plan_sweep(BASE, "guidance_scale=2,40", "num_inference_steps=10,60,70")
    message = str(info.value)
    assert "5 of 6 sweep cells are invalid; nothing was sent" in message
    assert "guidance_scale=40: 40.0 is not allowed; must be a number from 0 to 35" in message
    assert "num_inference_steps=60:" in message
    assert "(3 cells: c0001, c0003, c0005)" in message  # guidance 40 in every row
    assert isinstance(info.value, InputError)
    assert {p.field for p in info.value.problems} == {
        "guidance_scale=40",
        "num_inference_steps=60",
        "num_inference_steps=70",
    }


def test_nested_problem_names_the_field_and_problems_are_capped() -> None:
    with pytest.raises(InputError, match=r"image_size=20000x10: image_size\.width: 20000"):
        plan_sweep(BASE, "image_size=square,20000x10")
    with pytest.raises(SweepError) as info:
        plan_sweep(BASE, "guidance_scale=36-70")
    assert len(info.value.problems) == 20
    assert info.value.hidden == 15
    assert "... and 15 more" in str(info.value)


def test_cap_on_cells() -> None:
    with pytest.raises(InputError, match="10201 cells is more than the cap of 10000"):
        plan_sweep(BASE, "seed=0-100", "guidance_scale=0-10 (+0.1)")
    assert len(plan_sweep(BASE, "seed=0-9", max_cells=10).cells) == 10
    with pytest.raises(InputError, match="cap of 9"):
        plan_sweep(BASE, "seed=0-9", max_cells=9)


def test_seed_modes() -> None:
    x, y = "guidance_scale=2,3,4", "num_inference_steps=10,20"
    fixed = plan_sweep({"prompt": "p"}, x, y, rng=random.Random(1))
    assert len({c.seed for c in fixed.cells}) == 1
    assert fixed.seed == fixed.cells[0].seed
    assert fixed.seed is not None
    assert plan_sweep({"prompt": "p", "seed": 9}, x, y).seed == 9
    per_cell = plan_sweep({"prompt": "p"}, x, y, seed_mode="per_cell", rng=random.Random(2))
    assert len({c.seed for c in per_cell.cells}) == 6
    counted = plan_sweep({"prompt": "p"}, x, y, seed_mode="per_cell", seed=100)
    assert [c.seed for c in counted.cells] == [100, 101, 102, 103, 104, 105]
    per_row = plan_sweep({"prompt": "p"}, x, y, seed_mode="per_row", seed=7)
    assert [c.seed for c in per_row.cells] == [7, 7, 7, 8, 8, 8]
    drawn = plan_sweep({"prompt": "p"}, x, y, seed_mode="per_row", rng=random.Random(3))
    assert len({c.seed for c in drawn.cells}) == 2
    axis = plan_sweep({"prompt": "p", "seed": 9}, "seed=1,2", seed_mode="per_cell")
    assert [c.seed for c in axis.cells] == [1, 2]
    assert axis.seed is None
    with pytest.raises(InputError, match="seed_mode"):
        plan_sweep({"prompt": "p"}, x, seed_mode="random")  # type: ignore[arg-type]


def test_base_input_is_validated_and_an_axis_may_not_repeat() -> None:
    with pytest.raises(InputError, match="num_images"):
        plan_sweep({"prompt": "p", "num_images": 9}, "seed=1,2")
    with pytest.raises(InputError, match="swept on two axes"):
        plan_sweep(BASE, "seed=1,2", "seed=3,4")


def test_plan_json_round_trip_and_fingerprint() -> None:
    plan = plan_sweep(
        BASE,
        "guidance_scale=2,3.5",
        "image_size=square,1024x768",
        "prompt_sr=red,blue",
        seed_mode="per_cell",
        rng=random.Random(5),
    )
    data = json.loads(json.dumps(plan.to_json()))
    again = SweepPlan.from_json(data)
    assert again == plan
    assert again.fingerprint() == plan.fingerprint()
    other = plan_sweep(
        BASE,
        "guidance_scale=2,3.5",
        "image_size=square,1024x768",
        "prompt_sr=red,blue",
        seed_mode="per_cell",
        rng=random.Random(6),
    )
    assert other.fingerprint() != plan.fingerprint()  # seeds are part of the definition
    with pytest.raises(ValueError, match="not a fluxwidget-sweep"):
        SweepPlan.from_json({"format": "something else"})


def test_legend_lists_what_no_axis_varies() -> None:
    plan = plan_sweep(BASE, "guidance_scale=2,3", seed=5)
    legend = plan.legend()
    assert legend["prompt"] == BASE.prompt
    assert legend["seed"] == "5"
    assert legend["loras[0]"] == f"{LORA} @ 1"
    assert "guidance_scale" not in legend
    assert "prompt" not in plan_sweep(BASE, "prompt_sr=red,blue").legend()
