"""The emulator's placeholder images: exact size and format, deterministic, served or inline."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from fluxwidget.emulator import Emulator
from fluxwidget.emulator.render import RENDER_MAX_SIDE, RenderSpec, canvas_size, render_image
from fluxwidget.schema import PRESET_SIZES

APP = "/fal-ai/flux-lora"


def generate(http: httpx.Client, **fields: Any) -> dict[str, Any]:
    """Submit, wait, and return the result JSON."""
    fields.setdefault("num_inference_steps", 2)
    body = http.post(APP, json=fields).json()
    deadline = time.monotonic() + 10
    while http.get(body["status_url"]).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    reply = http.get(body["response_url"])
    assert reply.status_code == 200, reply.text
    out: dict[str, Any] = reply.json()
    return out


def download(url: str) -> httpx.Response:
    """Fetch an image URL without any auth, like a CDN."""
    reply = httpx.get(url)
    assert reply.status_code == 200
    return reply


@pytest.mark.parametrize(
    ("image_size", "output_format", "expected"),
    [
        ("square", "png", PRESET_SIZES["square"]),
        ("portrait_16_9", "jpeg", PRESET_SIZES["portrait_16_9"]),
        ({"width": 300, "height": 123}, "png", (300, 123)),
        ({"width": 2500, "height": 40}, "jpeg", (2500, 40)),
        ({"width": 1, "height": 1}, "png", (1, 1)),
    ],
)
def test_images_have_the_exact_size_and_format(
    http: httpx.Client, image_size: Any, output_format: str, expected: tuple[int, int]
) -> None:
    out = generate(http, prompt="size", image_size=image_size, output_format=output_format)
    entry = out["images"][0]
    reply = download(entry["url"])
    image = Image.open(io.BytesIO(reply.content))
    assert image.size == expected
    assert (entry["width"], entry["height"]) == expected
    assert image.format == {"png": "PNG", "jpeg": "JPEG"}[output_format]
    assert reply.headers["content-type"] == f"image/{output_format}"
    assert entry["content_type"] == f"image/{output_format}"
    assert entry["file_size"] == len(reply.content)
    assert entry["file_name"].endswith(f".{output_format}")


def test_same_input_and_seed_give_identical_bytes(http: httpx.Client) -> None:
    fields = {"prompt": "same", "seed": 7, "loras": [{"path": "a/b", "scale": 0.5}]}
    first = download(generate(http, **fields)["images"][0]["url"]).content
    second = download(generate(http, **fields)["images"][0]["url"]).content
    other = download(generate(http, **fields, guidance_scale=7.0)["images"][0]["url"]).content
    assert first == second
    assert first != other


def test_a_missing_seed_is_random_and_reported(http: httpx.Client) -> None:
    one = generate(http, prompt="random seed")
    two = generate(http, prompt="random seed")
    assert isinstance(one["seed"], int)
    assert one["seed"] != two["seed"]
    again = generate(http, prompt="random seed", seed=one["seed"])
    first = download(one["images"][0]["url"]).content
    assert download(again["images"][0]["url"]).content == first


def test_each_image_of_a_request_differs(http: httpx.Client) -> None:
    out = generate(http, prompt="four", seed=1, num_images=3, image_size="square")
    urls = [entry["url"] for entry in out["images"]]
    assert len(set(urls)) == 3
    assert len({download(url).content for url in urls}) == 3
    assert out["has_nsfw_concepts"] == [False, False, False]


def test_sync_mode_returns_data_uris_and_keeps_no_file(http: httpx.Client, emu: Emulator) -> None:
    out = generate(http, prompt="inline", sync_mode=True, output_format="png", image_size="square")
    url = out["images"][0]["url"]
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    data = base64.b64decode(url[len(prefix) :])
    assert Image.open(io.BytesIO(data)).size == (512, 512)
    assert out["images"][0]["file_size"] == len(data)
    request_id = next(r for r, info in emu.jobs.items() if info.input.get("prompt") == "inline")
    assert httpx.get(f"{emu.url}/files/{request_id}/0.png").status_code == 404


def test_nsfw_test_prompt_flags_image_zero_and_makes_it_black(http: httpx.Client) -> None:
    out = generate(http, prompt="an nsfw-test picture", num_images=2, image_size="square")
    assert out["has_nsfw_concepts"] == [True, False]
    black = Image.open(io.BytesIO(download(out["images"][0]["url"]).content)).convert("L")
    assert black.getextrema()[1] <= 8
    other = Image.open(io.BytesIO(download(out["images"][1]["url"]).content)).convert("L")
    assert other.getextrema()[1] > 100
    unchecked = generate(http, prompt="nsfw-test", enable_safety_checker=False)
    assert unchecked["has_nsfw_concepts"] == [False]


def test_unknown_files_are_404(emu: Emulator, http: httpx.Client) -> None:
    out = generate(http, prompt="files", output_format="jpeg")
    url = out["images"][0]["url"]
    assert httpx.get(url.replace(".jpeg", ".png")).status_code == 404
    assert httpx.get(url.replace("/0.jpeg", "/5.jpeg")).status_code == 404
    assert httpx.get(f"{emu.url}/files/nope/0.jpeg").status_code == 404


def test_placeholder_shows_text_over_a_parameter_coloured_background() -> None:
    base = RenderSpec(prompt="a fox", seed=1, steps=28, guidance=3.5, width=1024, height=768)
    image = Image.open(io.BytesIO(render_image(base))).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None
    assert len(colours) > 50  # text, stripes and panels, not a flat fill
    top_left = image.crop((0, 0, 1024, 60)).convert("L")
    assert top_left.getextrema()[1] > 200  # white label text on the dark band


@settings(max_examples=15, deadline=None)
@given(
    width=st.integers(min_value=1, max_value=3000),
    height=st.integers(min_value=1, max_value=3000),
    png=st.booleans(),
)
def test_render_always_has_the_exact_requested_size(width: int, height: int, png: bool) -> None:
    spec = RenderSpec(
        prompt="p " * 100,
        seed=3,
        steps=1,
        guidance=0.0,
        width=width,
        height=height,
        loras=(("x" * 200, 4.0),) * 5,
        output_format="png" if png else "jpeg",
    )
    assert Image.open(io.BytesIO(render_image(spec))).size == (width, height)
    assert max(canvas_size(width, height)) <= RENDER_MAX_SIDE
