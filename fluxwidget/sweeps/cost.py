"""What a sweep will cost, before anything is sent: cells × images × billed megapixels × price.

fal bills flux-lora per image, "rounding up to the nearest megapixel". Whether 1 MP means
1,000,000 or 2^20 pixels (so whether 1024×1024 bills as 2 MP or 1 MP) is not documented, so the
rule lives here only (`billed_megapixels`, `DEFAULT_ROUNDING`) and every figure is an estimate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Literal

from PIL import Image

from ..client.pricing import UnitPrice
from ..images import decode_data_uri, image_size
from ..schema import DEFAULT_UNKNOWN_SIZE, FluxLoraInput, ImageToImageInput

__all__ = [
    "CONFIRM_ABOVE_USD",
    "DEFAULT_PRICE",
    "DEFAULT_ROUNDING",
    "CostEstimate",
    "Rounding",
    "UnitPrice",
    "billed_megapixels",
    "estimate_cost",
    "output_size",
]

Rounding = Literal["up", "up_binary", "exact"]
"""``up``: ceil(pixels / 1,000,000); ``up_binary``: ceil(pixels / 2^20); ``exact``: no rounding."""

DEFAULT_ROUNDING: Rounding = "up"
CONFIRM_ABOVE_USD = 1.0
"""A sweep estimated above this many dollars asks for confirmation."""

DEFAULT_PRICE = UnitPrice(0.035, "megapixel", "default (documented price, may be out of date)")
"""flux-lora's documented price: $0.035 per megapixel."""


def billed_megapixels(width: int, height: int, rounding: Rounding = DEFAULT_ROUNDING) -> float:
    """The megapixels one image of width × height bills as (see the module notes)."""
    pixels = width * height
    if rounding == "up":
        return float(math.ceil(pixels / 1_000_000))
    if rounding == "up_binary":
        return float(math.ceil(pixels / 2**20))
    if rounding == "exact":
        return pixels / 1_000_000
    raise ValueError(f"rounding: {rounding!r} is not allowed; use 'up', 'up_binary' or 'exact'")


def _money(usd: float) -> str:
    places = Decimal("0.01") if usd >= 0.1 or usd == 0 else Decimal("0.001")  # cents, or 1/10
    return "$" + str(Decimal(repr(usd)).quantize(places, rounding=ROUND_HALF_UP))


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class CostEstimate:
    """The estimated cost of some inputs: counts, billed megapixels and dollars."""

    cells: int
    images: int
    megapixels: float
    usd: float
    price: UnitPrice
    unknown_sizes: int = 0
    """Inputs whose output size is the input image's and that image could not be read (an
    URL): counted at `DEFAULT_UNKNOWN_SIZE`."""

    def needs_confirmation(self, threshold: float = CONFIRM_ABOVE_USD) -> bool:
        """Whether the estimate is above the confirmation threshold (never on the emulator,
        which bills nothing)."""
        return self.usd > threshold and not self.price.emulated

    def brief(self) -> str:
        """A short line for a Generate button: ``≈ $0.07 (2 × 1 MP)`` (images × billed MP each),
        ``≈ $0.07 (2 images, 2 MP)`` when the images differ in size."""
        if self.images and self.price.per_megapixel:
            each = self.megapixels / self.images
            mp = f"{each:g}" if each.is_integer() else f"{each:.2f}"
            counts = f"{self.images} × {mp} MP"
        else:
            counts = _count(self.images, "image")
        money = _money(self.usd)
        if len(money.split(".")[-1]) == 3 and money.endswith("0"):
            money = money[:-1]  # $0.070 → $0.07 (tenths of a cent only where they count)
        return f"≈ {money} ({counts})"

    def describe(self) -> str:
        """E.g. ``9 cells × 1 image · 9 MP · ≈ $0.32 (estimate, $0.035/MP, default ...)``."""
        if self.cells and self.images % self.cells == 0:
            per = self.images // self.cells
            counts = f"{_count(self.cells, 'cell')} × {_count(per, 'image')}"
        else:
            counts = f"{_count(self.cells, 'cell')} · {_count(self.images, 'image')}"
        mp = f"{self.megapixels:g}" if self.megapixels.is_integer() else f"{self.megapixels:.2f}"
        unknown = ""
        if self.unknown_sizes:
            w, h = DEFAULT_UNKNOWN_SIZE
            unknown = (
                f"; {_count(self.unknown_sizes, 'cell')} at the input image's unknown size, "
                f"assumed {w}×{h}"
            )
        return (
            f"{counts} · {mp} MP · ≈ {_money(self.usd)} "
            f"(estimate, {self.price.short}, {self.price.source}{unknown})"
        )


def estimate_cost(
    inputs: Iterable[FluxLoraInput],
    price: UnitPrice = DEFAULT_PRICE,
    *,
    rounding: Rounding = DEFAULT_ROUNDING,
) -> CostEstimate:
    """The estimated cost of sending every input once (each bills per image)."""
    cells = images = unknown = 0
    megapixels = Decimal(0)
    sizes: dict[str, tuple[int, int] | None] = {}
    for item in inputs:
        size = output_size(item, sizes)
        if size is None:
            unknown += 1
            size = DEFAULT_UNKNOWN_SIZE
        width, height = size
        cells += 1
        images += item.num_images
        megapixels += Decimal(repr(billed_megapixels(width, height, rounding))) * item.num_images
    units = megapixels if price.per_megapixel else Decimal(images)
    usd = float(units * Decimal(repr(price.usd_per_unit)))
    return CostEstimate(cells, images, float(megapixels), usd, price, unknown)


def output_size(
    item: FluxLoraInput, known: dict[str, tuple[int, int] | None] | None = None
) -> tuple[int, int] | None:
    """The (width, height) an input's images will have: the size asked for, else (image-to-
    image and inpainting without `image_size`) the input image's when it is a local file
    Pillow reads; None when it cannot be known before sending. `known` caches file sizes."""
    if not isinstance(item, ImageToImageInput) or item.image_size is not None:
        return item.pixel_size
    path = item.image_url
    cache = known if known is not None else {}
    if path not in cache:
        cache[path] = _local_image_size(path)
    return cache[path]


def _local_image_size(path: str) -> tuple[int, int] | None:
    if path.startswith("data:"):
        try:
            return image_size(decode_data_uri(path)[0])
        except ValueError:
            return None
    if "://" in path:
        return None
    try:
        with Image.open(Path(path).expanduser()) as image:
            width, height = image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return int(width), int(height)
