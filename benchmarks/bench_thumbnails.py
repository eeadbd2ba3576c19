"""What the panel sends to the browser: full-size image bytes vs ``images.thumbnail(data, 256)``.

Full-size images come from a loopback emulator (``client.generate`` + ``client.download``) at
1024×768 and 1024×1024, JPEG and PNG. The emulator draws placeholders (flat colour, stripes,
text), which compress far better than photographs; a row of random noise at the same size
(made with Pillow here, not by the emulator) shows the other extreme.

Times are medians over ``--repeat`` calls, in this thread, the two kinds alternating:

- ``thumbnail``: ``fluxwidget.images.thumbnail(data, 256)``;
- ``prepare``: ``fluxwidget.ui.jobs.make_thumbnail`` — what the panel runs per image (it opens
  the image once for its size, then ``thumbnail`` decodes it again).

Run: .venv/bin/python benchmarks/bench_thumbnails.py [--repeat 31]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
import statistics
import time
from collections.abc import Callable
from functools import partial

from PIL import Image

from fluxwidget import images
from fluxwidget.client import FluxClient
from fluxwidget.emulator import Emulator
from fluxwidget.ui.jobs import make_thumbnail

ENTRY_OVERHEAD = 800
"""Bytes of a gallery entry's JSON in the saved state (caption, seed, summary), measured."""
SIZES = {"landscape_4_3": (1024, 768), "square_hd": (1024, 1024)}
FORMATS = ("jpeg", "png")

SHORT = os.environ.get("BENCH_SHORT", "") not in ("", "0")
"""BENCH_SHORT=1: tiny settings, a smoke test (CI runs it so the script cannot rot)."""


async def fetch(steps: int) -> dict[str, bytes]:
    """Full-size images from the emulator, by label."""
    found: dict[str, bytes] = {}
    with Emulator(workers=2, seconds_per_step=0.01) as emu:
        async with FluxClient(api_key=emu.api_key, base_url=emu.url, journal=False) as client:
            for preset, (width, height) in SIZES.items():
                for fmt in FORMATS:
                    output = await client.generate(
                        prompt="a lighthouse at dusk, oil painting",
                        image_size=preset,
                        output_format=fmt,
                        num_inference_steps=steps,
                        seed=7,
                    )
                    found[f"emulator {width}x{height} {fmt}"] = await client.download(
                        output.images[0]
                    )
    return found


def noise(width: int, height: int, fmt: str) -> bytes:
    """A worst case for compression: Gaussian noise, as JPEG (q 95) or PNG."""
    grey = Image.effect_noise((width, height), 64)
    picture = Image.merge(
        "RGB",
        (grey, grey.rotate(90, expand=False), grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    )
    out = io.BytesIO()
    picture.save(out, format="JPEG" if fmt == "jpeg" else "PNG", quality=95)
    return out.getvalue()


def photo_like(side: int = 1024, seed: int = 7) -> bytes:
    """A photo-like JPEG (q 90): random noise at four scales blended, so it has smooth areas and
    fine detail like a photograph (its 256 px JPEG q85 thumbnail is ~20 KiB, as a photo's)."""
    import random

    rng = random.Random(seed)
    picture: Image.Image | None = None
    for scale, weight in ((8, 0.35), (32, 0.3), (128, 0.2), (side, 0.15)):
        raw = bytes(rng.getrandbits(8) for _ in range(scale * scale * 3))
        layer = Image.frombytes("RGB", (scale, scale), raw).resize(
            (side, side), Image.Resampling.BICUBIC
        )
        picture = layer if picture is None else Image.blend(picture, layer, weight / (weight + 0.5))
    assert picture is not None
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=90)
    return out.getvalue()


def median_ms_pair(
    first: Callable[[], object], second: Callable[[], object], repeat: int
) -> tuple[float, float]:
    """Median milliseconds of two calls, timed alternately (so load changes hit both alike)."""
    first(), second()  # warm-up
    times: tuple[list[float], list[float]] = ([], [])
    for index in range(repeat):
        order = ((0, first), (1, second)) if index % 2 == 0 else ((1, second), (0, first))
        for slot, fn in order:
            start = time.perf_counter()
            fn()
            times[slot].append(time.perf_counter() - start)
    return statistics.median(times[0]) * 1000, statistics.median(times[1]) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=3 if SHORT else 31, help="timed calls per image and kind"
    )
    parser.add_argument(
        "--max-side",
        type=int,
        default=256,
        help="thumbnail size (the panel, and so the prepare column, uses 256)",
    )
    args = parser.parse_args()
    if not 1 <= args.repeat <= 200:
        parser.error("--repeat must be within 1..200")

    samples = asyncio.run(fetch(steps=4))
    for width, height in SIZES.values():
        samples[f"noise    {width}x{height} jpeg"] = noise(width, height, "jpeg")
    samples["photo-like 1024x1024 jpeg"] = photo_like(256 if SHORT else 1024)

    header = (
        f"{'image':<28} {'full KiB':>9} {'thumb KiB':>10} {'thumb px':>9} {'full/thumb':>11} "
        f"{'thumbnail ms':>13} {'prepare ms':>11} {'prepare/thumb':>14}"
    )
    print(
        f"thumbnail max_side={args.max_side}, median of {args.repeat} calls each; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    print()
    print(header)
    print("-" * len(header))
    total_full = total_thumb = 0
    for label, data in samples.items():
        thumb = images.thumbnail(data, args.max_side)
        with images.open_image(thumb) as small:
            thumb_px = f"{small.width}x{small.height}"
        t_thumb, t_prep = median_ms_pair(
            partial(images.thumbnail, data, args.max_side),
            partial(make_thumbnail, data),
            args.repeat,
        )
        total_full += len(data)
        total_thumb += len(thumb)
        print(
            f"{label:<28} {len(data) / 1024:>9.1f} {len(thumb) / 1024:>10.1f} {thumb_px:>9} "
            f"{len(data) / len(thumb):>10.1f}x {t_thumb:>13.1f} {t_prep:>11.1f} "
            f"{t_prep / t_thumb:>13.2f}x"
        )
    print()
    print(
        f"all rows: full {total_full / 1024:.0f} KiB vs thumbnails {total_thumb / 1024:.0f} KiB "
        f"= {total_full / total_thumb:.1f}x fewer bytes to the browser"
    )
    print()
    print("what the panel keeps per shown image (make_thumbnail) and what it costs saved:")
    head = f"{'image':<28} {'JPEG 256 q85 KiB':>17} {'panel thumb KiB':>16} {'saved kB':>9}"
    print(head)
    print("-" * len(head))
    for label, data in samples.items():
        old = images.thumbnail(data, 256, 85)
        thumb, _w, _h = make_thumbnail(data)
        saved = len(base64.b64encode(thumb)) + ENTRY_OVERHEAD
        print(
            f"{label:<28} {len(old) / 1024:>17.1f} {len(thumb) / 1024:>16.1f} {saved / 1000:>9.1f}"
        )
    print(
        f"(saved: the thumbnail as base64 plus ~{ENTRY_OVERHEAD} bytes of its gallery entry; "
        "bench_panel.py measures the whole state)"
    )


if __name__ == "__main__":
    main()
