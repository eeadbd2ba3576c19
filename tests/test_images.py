"""Image helpers: data: URIs, thumbnails, metadata embedded without touching the pixels."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from fluxwidget.images import (
    decode_data_uri,
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
