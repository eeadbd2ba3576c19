"""Image helpers: data: URIs, decoding, thumbnails, and saving with metadata.

Metadata goes into the file itself without re-encoding the pixels (a PNG iTXt chunk or a JPEG
comment segment inserted byte-wise), so every saved image can be reproduced from its parameters;
the run's manifest holds the same record (`fluxwidget.store.records`).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

from PIL import Image, ImageDraw, JpegImagePlugin, PngImagePlugin

from .disk import write_atomically

__all__ = [
    "METADATA_KEY",
    "PREVIEW_MAX_PIXELS",
    "decode_data_uri",
    "image_size",
    "open_image",
    "read_metadata",
    "save_image",
    "thumbnail",
    "too_large_tile",
]

METADATA_KEY = "fluxwidget"
"""The PNG text key (and JPEG comment prefix) under which parameters are stored."""

_JPEG_COMMENT_PREFIX = METADATA_KEY.encode() + b":"


def decode_data_uri(uri: str) -> tuple[bytes, str]:
    """Decode a ``data:`` URI into (bytes, content type)."""
    if not uri.startswith("data:") or "," not in uri:
        raise ValueError("not a data: URI")
    header, _, payload = uri[5:].partition(",")
    parts = header.split(";")
    content_type = parts[0] or "text/plain"
    if "base64" in parts[1:]:
        try:
            return base64.b64decode(payload, validate=True), content_type
        except binascii.Error as exc:
            raise ValueError(f"invalid base64 in data: URI: {exc}") from None
    return unquote_to_bytes(payload), content_type


def open_image(data: bytes) -> Image.Image:
    """Decode image bytes with Pillow (fully loaded, so the bytes can be dropped)."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The size in a JPEG's first start-of-frame segment, found by walking the segments."""
    if data[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 9 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return int(width), int(height)
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        at += 2 + length
    return None


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) read from the image header, without decoding the pixels (and without
    Pillow's decompression-bomb refusal, so a legitimately huge image can be sized)."""
    size = _png_size(data) or _jpeg_size(data)
    if size is not None:
        return size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except Image.DecompressionBombError as exc:
        raise ValueError(f"image too large to size safely: {exc}") from None
    except (OSError, SyntaxError) as exc:  # Pillow's UnidentifiedImageError is an OSError
        raise ValueError(f"not an image Pillow can read: {type(exc).__name__}") from None
    return int(width), int(height)


PREVIEW_MAX_PIXELS = 40_000_000
"""Pixels decoded at most for a thumbnail (after JPEG draft reduction); larger images get the
"too large to preview" tile instead of a full decode."""


def too_large_tile(width: int, height: int, max_side: int = 256, quality: int = 85) -> bytes:
    """A grey JPEG tile saying the image is too large to preview (its file is intact)."""
    tile = Image.new("RGB", (max_side, max(32, max_side * 3 // 4)), (96, 96, 96))
    draw = ImageDraw.Draw(tile)
    draw.text((8, 8), f"{width}x{height}\ntoo large to preview", fill=(255, 255, 255))
    out = io.BytesIO()
    tile.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _open_unchecked(data: bytes) -> Image.Image:
    """Open without Pillow's decompression-bomb refusal; the caller bounds what is decoded."""
    if data[:2] == b"\xff\xd8":
        return JpegImagePlugin.JpegImageFile(io.BytesIO(data))
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return PngImagePlugin.PngImageFile(io.BytesIO(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data))


def thumbnail(data: bytes, max_side: int = 256, quality: int = 85, format: str = "JPEG") -> bytes:
    """A JPEG (or, with ``format="WEBP"``, WebP) thumbnail whose longer side is at most
    `max_side` pixels.

    A JPEG is decoded at a reduced scale (Pillow's draft mode), which is much cheaper than
    decoding it at full size and shrinking it. An image that would still need more than
    `PREVIEW_MAX_PIXELS` decoded gets `too_large_tile` instead; never a DecompressionBombError.
    """
    width, height = image_size(data)
    try:
        image = _open_unchecked(data)
    except Image.DecompressionBombError:
        return too_large_tile(width, height, max_side, quality)
    image.draft("RGB", (max_side, max_side))
    if image.size[0] * image.size[1] > PREVIEW_MAX_PIXELS:
        return too_large_tile(width, height, max_side, quality)
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    out = io.BytesIO()
    if format.upper() == "WEBP":
        image.save(out, format="WEBP", quality=quality, method=4)
    else:
        image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _png_with_text(data: bytes, text: str) -> bytes:
    """Insert an iTXt chunk right after IHDR; the pixels are untouched."""
    signature, ihdr_end = data[:8], 8 + 8 + 13 + 4  # signature, IHDR header + body + crc
    if signature != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    body = METADATA_KEY.encode() + b"\x00\x00\x00\x00\x00" + text.encode("utf-8")
    chunk = struct.pack(">I", len(body)) + b"iTXt" + body
    chunk += struct.pack(">I", zlib.crc32(b"iTXt" + body) & 0xFFFFFFFF)
    return data[:ihdr_end] + chunk + data[ihdr_end:]


def _jpeg_with_comment(data: bytes, text: str) -> bytes:
    """Insert a COM segment right after SOI; the pixels are untouched."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG file")
    comment = _JPEG_COMMENT_PREFIX + text.encode("utf-8")
    if len(comment) > 65533:
        return data  # too large for one segment: the run's manifest still holds it
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + data[2:]


def save_image(data: bytes, path: str | Path, metadata: dict[str, Any]) -> Path:
    """Write image bytes to `path` with `metadata` embedded, atomically and durably; a full
    disk is a `DiskFullError` naming the file."""
    target = Path(path)
    text = json.dumps(metadata, sort_keys=True, default=str)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        payload = _png_with_text(data, text)
    elif data[:2] == b"\xff\xd8":
        payload = _jpeg_with_comment(data, text)
    else:
        payload = data
    write_atomically(target, payload)  # complete under its final name, or not there at all
    return target


def check_complete(data: bytes) -> None:
    """Raise ValueError unless `data` is a whole image (a file cut short by a crash or a full
    disk is not); the pixels are checked without being kept."""
    with _open_unchecked(data) as image:
        image.verify()
    if data[:2] == b"\xff\xd8" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise ValueError("the JPEG data ends before its end marker")
    if data[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND" not in data[-12:]:
        raise ValueError("the PNG data ends before its IEND chunk")


def metadata_of(data: bytes) -> dict[str, Any] | None:
    """The metadata embedded by `save_image` in image bytes (from the header only)."""
    with _open_unchecked(data) as image:
        text = image.info.get(METADATA_KEY) if image.format == "PNG" else None
        comment = image.info.get("comment")
    if text is None and isinstance(comment, bytes) and comment.startswith(_JPEG_COMMENT_PREFIX):
        text = comment[len(_JPEG_COMMENT_PREFIX) :].decode("utf-8")
    return json.loads(text) if text else None


def read_metadata(path: str | Path) -> dict[str, Any] | None:
    """The metadata embedded by `save_image`, read back from the image file itself (from the
    header: the pixels are not decoded, so a huge image is no problem)."""
    return metadata_of(Path(path).read_bytes())
