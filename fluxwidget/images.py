"""Image helpers: data: URIs, decoding, thumbnails, and saving with metadata.

Metadata goes into the file itself without re-encoding the pixels (a PNG iTXt chunk or a JPEG
comment segment inserted byte-wise), so every saved image can be reproduced from its parameters;
the run's manifest holds the same record (`fluxwidget.records`).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

from PIL import Image

__all__ = [
    "METADATA_KEY",
    "decode_data_uri",
    "image_size",
    "open_image",
    "read_metadata",
    "save_image",
    "thumbnail",
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


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) read from the image header, without decoding the pixels."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    return int(width), int(height)


def thumbnail(data: bytes, max_side: int = 256, quality: int = 85) -> bytes:
    """A JPEG thumbnail whose longer side is at most `max_side` pixels.

    A JPEG is decoded at a reduced scale (Pillow's draft mode), which is much cheaper than
    decoding it at full size and shrinking it.
    """
    image: Image.Image = Image.open(io.BytesIO(data))
    image.draft("RGB", (max_side, max_side))
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    out = io.BytesIO()
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
        return data  # too large for one segment: the sidecar still holds it
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + data[2:]


def save_image(data: bytes, path: str | Path, metadata: dict[str, Any]) -> Path:
    """Write image bytes to `path` with `metadata` embedded, durably (fsynced)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(metadata, sort_keys=True, default=str)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        payload = _png_with_text(data, text)
    elif data[:2] == b"\xff\xd8":
        payload = _jpeg_with_comment(data, text)
    else:
        payload = data
    with target.open("wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    return target


def read_metadata(path: str | Path) -> dict[str, Any] | None:
    """The metadata embedded by `save_image`, read back from the image file itself."""
    with Image.open(path) as image:
        text = getattr(image, "text", {}).get(METADATA_KEY) if image.format == "PNG" else None
        comment = image.info.get("comment")
    if text is None and isinstance(comment, bytes) and comment.startswith(_JPEG_COMMENT_PREFIX):
        text = comment[len(_JPEG_COMMENT_PREFIX) :].decode("utf-8")
    return json.loads(text) if text else None
