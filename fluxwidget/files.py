"""Local files a job sends (LoRA weights, photos, masks): what kind each is and whether its
bytes look right — pure checks on bytes already read, no file system and no HTTP.

The client reads a file's first bytes and asks these functions before it uploads anything, so a
wrong file is an `InputError` naming the field, not a paid job that fails on the server.
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import PurePath

__all__ = [
    "IMAGE_SUFFIXES",
    "SAFETENSORS_MAX_HEADER",
    "content_type_for",
    "is_image_name",
    "is_safetensors_name",
    "safetensors_header_length",
    "safetensors_problem",
]

SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024
"""The largest JSON header the safetensors format allows (its reference reader refuses more)."""

IMAGE_SUFFIXES: dict[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
}
"""Image files by suffix, with the content type they are uploaded as."""


def is_safetensors_name(name: str | PurePath) -> bool:
    """Whether a file name says safetensors (``.safetensors``, any case)."""
    return PurePath(name).suffix.lower() == ".safetensors"


def is_image_name(name: str | PurePath) -> bool:
    """Whether a file name says image (PNG, JPEG, WebP, GIF, BMP)."""
    return PurePath(name).suffix.lower() in IMAGE_SUFFIXES


def content_type_for(name: str | PurePath) -> str:
    """The ``Content-Type`` a file is uploaded with: ``application/octet-stream`` for LoRA
    weights (``.safetensors``, as fal's clients send them), the image type for images, else a
    guess from the suffix, else ``application/octet-stream``."""
    suffix = PurePath(name).suffix.lower()
    if suffix == ".safetensors":
        return "application/octet-stream"
    if suffix in IMAGE_SUFFIXES:
        return IMAGE_SUFFIXES[suffix]
    guessed, _ = mimetypes.guess_type(PurePath(name).name)
    return guessed or "application/octet-stream"


def safetensors_header_length(first8: bytes, size: int) -> int:
    """The header length N a safetensors file declares in its first 8 bytes (little-endian),
    checked against the file's `size`; ValueError (in words) when it cannot be one."""
    if size < 8 or len(first8) < 8:
        raise ValueError(f"is {size} bytes long: too short for a safetensors file")
    length = int.from_bytes(first8[:8], "little")
    if length < 2:
        raise ValueError("is not a safetensors file (its header length is 0)")
    if length > SAFETENSORS_MAX_HEADER:
        raise ValueError(
            f"is not a safetensors file (it declares a header of {length:,} bytes, more than "
            f"the format allows)"
        )
    if length > size - 8:
        raise ValueError(
            f"is not a safetensors file, or is cut short (it declares a {length:,}-byte header "
            f"but has {size - 8:,} bytes after the length)"
        )
    return length


def safetensors_problem(head: bytes, size: int) -> str | None:
    """None when `head` (the file's first 8 + N bytes, N the declared header length) starts
    a safetensors file of `size` bytes, else why not (in words).

    The format: 8 bytes of little-endian header length N, then N bytes of a UTF-8 JSON object
    (tensor name → dtype, shape, data_offsets; plus an optional ``__metadata__``), then the data.
    """
    try:
        length = safetensors_header_length(head[:8], size)
    except ValueError as exc:
        return str(exc)
    raw = head[8 : 8 + length]
    if len(raw) < length:
        return "is cut short (the header ends before its declared length)"
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "is not a safetensors file (its header is not JSON)"
    if not isinstance(header, dict):
        return "is not a safetensors file (its header is not a JSON object)"
    data_size = size - 8 - length
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(x, int) for x in offsets)
        ):
            return f"is not a safetensors file (tensor {name[:60]!r} has no data_offsets)"
        if not 0 <= offsets[0] <= offsets[1] <= data_size:
            return f"is cut short or damaged (tensor {name[:60]!r} lies past the end of the file)"
    return None
