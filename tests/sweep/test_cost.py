"""Cost before spending: billed megapixels per image, totals, the description."""

from __future__ import annotations

import pytest

from fluxwidget.schema import FluxLoraInput
from fluxwidget.sweeps.axes import plan_sweep
from fluxwidget.sweeps.cost import (
    CONFIRM_ABOVE_USD,
    DEFAULT_PRICE,
    UnitPrice,
    billed_megapixels,
    estimate_cost,
)


@pytest.mark.parametrize(
    ("size", "rounding", "expected"),
    [
        ((512, 512), "up", 1.0),
        ((1000, 1000), "up", 1.0),
        ((1024, 1024), "up", 2.0),
        ((1024, 1024), "up_binary", 1.0),
        ((1024, 768), "up", 1.0),
        ((2048, 2048), "up", 5.0),
        ((1024, 1024), "exact", 1.048576),
    ],
)
def test_billed_megapixels(size: tuple[int, int], rounding: str, expected: float) -> None:
    assert billed_megapixels(*size, rounding=rounding) == pytest.approx(expected)  # type: ignore[arg-type]


def test_unknown_rounding_is_refused() -> None:
    with pytest.raises(ValueError, match="rounding"):
        billed_megapixels(1, 1, rounding="down")  # type: ignore[arg-type]


def test_three_by_three_sweep() -> None:
    plan = plan_sweep(
        {"prompt": "p", "image_size": "landscape_4_3"}, "guidance_scale=2,3,4", "seed=1,2,3"
    )
    estimate = estimate_cost(c.input for c in plan.cells)
    assert (estimate.cells, estimate.images, estimate.megapixels) == (9, 9, 9.0)
    assert estimate.usd == pytest.approx(0.315)
    assert estimate.price is DEFAULT_PRICE
    text = estimate.describe()
    assert text.startswith("9 cells × 1 image · 9 MP · ≈ $0.32 (estimate, $0.035/MP, default")
    assert not estimate.needs_confirmation()


def test_images_and_sizes_vary_per_cell() -> None:
    inputs = [
        FluxLoraInput(prompt="p", image_size="square_hd", num_images=4),  # 4 × 2 MP
        FluxLoraInput(prompt="p", image_size="square", num_images=1),  # 1 × 1 MP
        FluxLoraInput(prompt="p", image_size=(4000, 3000), num_images=2),  # 2 × 12 MP
    ]
    estimate = estimate_cost(inputs, UnitPrice(0.05, "megapixel", "fal's price"))
    assert (estimate.cells, estimate.images, estimate.megapixels) == (3, 7, 33.0)
    assert estimate.usd == pytest.approx(1.65)
    assert estimate.needs_confirmation()
    assert CONFIRM_ABOVE_USD == 1.0
    assert estimate.describe() == (
        "3 cells · 7 images · 33 MP · ≈ $1.65 (estimate, $0.05/MP, fal's price)"
    )
    exact = estimate_cost(inputs, rounding="exact")
    assert exact.megapixels == pytest.approx(4 * 1.048576 + 0.262144 + 24)


def test_price_per_image_and_small_sums() -> None:
    inputs = [FluxLoraInput(prompt="p", num_images=2)] * 3
    per_image = estimate_cost(inputs, UnitPrice(0.01, "image", "fal's price"))
    assert per_image.usd == pytest.approx(0.06)
    assert "$0.01/image" in per_image.describe()
    one = estimate_cost([FluxLoraInput(prompt="p", image_size="square")])
    assert "≈ $0.035 " in one.describe()
    none = estimate_cost([])
    assert none.describe().startswith("0 cells")
    assert none.usd == 0
