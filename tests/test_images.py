"""Image helpers: data: URIs, thumbnails, metadata embedded without touching the pixels."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from fluxwidget import images
from fluxwidget.images import (
    decode_data_uri,
    image_size,
    open_image,
    read_metadata,
    save_image,
    thumbnail,
)


def _image_bytes(fmt: str, size: tuple[int, int] = (640, 480)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 60)).save(out, format=fmt)
    return out.getvalue()


def test_data_uri_base64_and_plain() -> None:
    raw = _image_bytes("PNG", (3, 2))
    uri = "data:image/png;base64," + base64.b64encode(raw).decode()
    assert decode_data_uri(uri) == (raw, "image/png")
    assert decode_data_uri("data:,hello%20there") == (b"hello there", "text/plain")
    with pytest.raises(ValueError, match="base64"):
        decode_data_uri("data:image/png;base64,@@@")
    with pytest.raises(ValueError, match="not a data"):
        decode_data_uri("https://example.org/x.png")


def test_thumbnail_is_a_small_jpeg_with_the_same_aspect() -> None:
    thumb = thumbnail(_image_bytes("PNG", (1024, 576)), max_side=256)
    image = open_image(thumb)
    assert image.format == "JPEG"
    assert image.size == (256, 144)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_save_embeds_metadata_and_keeps_pixels(tmp_path: Path, fmt: str) -> None:
    raw = _image_bytes(fmt)
    metadata = {"input": {"prompt": "a tiger eye", "seed": 2**70}, "request_id": "r1"}
    path = save_image(raw, tmp_path / "out" / f"x.{fmt.lower()}", metadata)
    assert read_metadata(path) == {
        "input": {"prompt": "a tiger eye", "seed": 2**70},
        "request_id": "r1",
    }
    assert not path.with_suffix(".json").exists()  # one record: in the file and the manifest
    assert open_image(path.read_bytes()).tobytes() == open_image(raw).tobytes()


# --- huge images: sized, previewed and saved without a full decode ------------------------


def test_a_14142_square_png_is_sized_previewed_and_saved_without_decoding(
    tmp_path: Path,
) -> None:
    out = io.BytesIO()
    Image.new("1", (14142, 14142)).save(out, format="PNG")  # 200 M pixels, a few KB
    data = out.getvalue()
    assert image_size(data) == (14142, 14142)
    tile = thumbnail(data)  # more than PREVIEW_MAX_PIXELS: the "too large to preview" tile
    assert Image.open(io.BytesIO(tile)).size[0] <= 256
    path = save_image(data, tmp_path / "huge.png", {"seed": 1})
    assert read_metadata(path) == {"seed": 1}
    assert image_size(path.read_bytes()) == (14142, 14142)


def test_a_jpeg_over_pillows_bomb_limit_is_thumbnailed_in_draft_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = _image_bytes("JPEG", (2400, 1800))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)  # 2400×1800 is now a "bomb"
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(data))
    thumb = Image.open(io.BytesIO(thumbnail(data, max_side=256)))
    assert thumb.size == (256, 192)
    assert thumb.getpixel((10, 10))[0] > 150  # the picture, not the placeholder tile
    assert image_size(data) == (2400, 1800)


def test_a_png_over_the_preview_cap_gets_the_tile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "PREVIEW_MAX_PIXELS", 10_000)
    tile = Image.open(io.BytesIO(thumbnail(_image_bytes("PNG", (300, 200)))))
    assert tile.getpixel((200, 150)) == (96, 96, 96)


def test_image_size_of_something_else_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not an image"):
        image_size(b"<html>")
