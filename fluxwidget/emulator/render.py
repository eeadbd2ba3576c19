"""Placeholder images: exact size and format, deterministic, showing the parameters.

Each image is drawn on a canvas of at most ``RENDER_MAX_SIDE`` pixels on its long side and then
resized to the exact requested size, so a huge custom size costs little to draw. The background
colour and stripe pattern come from a hash of the parameters, so neighbouring cells of a sweep
grid look different even as thumbnails.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import json
import textwrap
from dataclasses import dataclass, field
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

RENDER_MAX_SIDE = 1024
"""Largest side that is actually drawn; bigger images are upscaled from it."""

LABEL = "FLUX EMULATOR - placeholder"
"""ASCII only: the default font has no em dash."""

FontType = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class RenderSpec:
    """Everything an image depends on."""

    prompt: str
    seed: int
    steps: int
    guidance: float
    width: int
    height: int
    loras: tuple[tuple[str, float], ...] = ()
    output_format: str = "jpeg"
    index: int = 0
    num_images: int = 1
    black: bool = False
    """A flagged (NSFW) image: solid black, as fal returns it."""
    source: bytes | None = field(default=None, repr=False)
    """Image-to-image: the input image; the placeholder is blended over it by `strength`."""
    mask: bytes | None = field(default=None, repr=False)
    """Inpainting: the mask; only its white area changes."""
    strength: float = 1.0

    def digest(self) -> bytes:
        """A stable hash of the parameters that change the picture."""
        data: list[object] = [
            self.prompt,
            self.seed,
            self.steps,
            self.guidance,
            self.width,
            self.height,
            list(self.loras),
            self.index,
        ]
        if self.source is not None:
            data.append(self.strength)
            data.append(hashlib.sha256(self.source).hexdigest())
        if self.mask is not None:
            data.append(hashlib.sha256(self.mask).hexdigest())
        return hashlib.sha256(json.dumps(data).encode()).digest()


@lru_cache(maxsize=64)
def _font(size: int) -> FontType:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow without FreeType: small bitmap font
        return ImageFont.load_default()


def _background(spec: RenderSpec, size: tuple[int, int]) -> Image.Image:
    """A colour and diagonal stripes derived from the parameters."""
    digest = spec.digest()
    hue = digest[0] / 255
    # guidance and steps shift the hue visibly, so a sweep along one axis reads as a gradient
    hue = (hue + spec.guidance / 35 * 0.5 + spec.steps / 50 * 0.25) % 1.0
    r, g, b = colorsys.hls_to_rgb(hue, 0.42 + digest[1] / 255 * 0.12, 0.55)
    base = (int(r * 255), int(g * 255), int(b * 255))
    r2, g2, b2 = colorsys.hls_to_rgb((hue + 0.08) % 1.0, 0.30, 0.55)
    stripe = (int(r2 * 255), int(g2 * 255), int(b2 * 255))
    image = Image.new("RGB", size, base)
    draw = ImageDraw.Draw(image)
    w, h = size
    spacing = max(8, int(max(w, h) * (0.04 + digest[2] / 255 * 0.08)))
    thickness = max(2, spacing // (2 + digest[3] % 3))
    direction = 1 if digest[4] % 2 else -1
    for offset in range(-h, w + h, spacing):
        start = (offset, 0)
        end = (offset + direction * h, h)
        draw.line([start, end], fill=stripe, width=thickness)
    return image


def _text_lines(spec: RenderSpec, chars_per_line: int, max_prompt_lines: int) -> list[str]:
    prompt = " ".join(spec.prompt.split())
    wrapped = textwrap.wrap(prompt, width=max(8, chars_per_line)) or [""]
    if len(wrapped) > max_prompt_lines:
        wrapped = wrapped[:max_prompt_lines]
        wrapped[-1] = wrapped[-1][: max(0, chars_per_line - 1)].rstrip() + "…"
    return wrapped


def _detail_lines(spec: RenderSpec) -> list[str]:
    lines = [
        f"seed {spec.seed}",
        f"steps {spec.steps} · guidance {spec.guidance:g}",
        f"{spec.width}x{spec.height} {spec.output_format}"
        + (f" · image {spec.index + 1}/{spec.num_images}" if spec.num_images > 1 else ""),
    ]
    for number, (path, scale) in enumerate(spec.loras[:3]):
        more = f" (+{len(spec.loras) - 3} more)" if number == 2 and len(spec.loras) > 3 else ""
        lines.append(f"LoRA {_shorten(path)}:{scale:g}{more}")
    if not spec.loras:
        lines.append("no LoRA")
    return lines


def _shorten(path: str, limit: int = 44) -> str:
    """Keep the start and the end of a long LoRA path, which say the most."""
    if len(path) <= limit:
        return path
    head = limit // 3
    return path[:head] + "…" + path[-(limit - head - 1) :]


def _fit(text: str, font: FontType, max_width: float) -> str:
    """Truncate ``text`` with an ellipsis so that it fits in ``max_width`` pixels."""
    if font.getlength(text) <= max_width:
        return text
    while text and font.getlength(text + "…") > max_width:
        text = text[:-1]
    return text + "…"


def _draw_panel(
    image: Image.Image, lines: list[str], font: FontType, top: int, fill: tuple[int, int, int, int]
) -> int:
    """Draw ``lines`` on a translucent band starting at ``top``; return the band's bottom."""
    w, _ = image.size
    size = getattr(font, "size", 10)
    pad = max(2, int(size * 0.4))
    line_h = int(size * 1.25)
    bottom = top + 2 * pad + line_h * len(lines)
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    ImageDraw.Draw(overlay).rectangle([0, top, w, bottom], fill=fill)
    image.paste(Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB"))
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        text = _fit(line, font, w - 2 * pad)
        draw.text((pad, top + pad + i * line_h), text, fill=(255, 255, 255), font=font)
    return bottom


def _draw_canvas(spec: RenderSpec, size: tuple[int, int]) -> Image.Image:
    image = _background(spec, size)
    w, h = size
    short = min(w, h)
    label_font = _font(max(6, int(short / 16)))
    body_font = _font(max(6, int(short / 17)))
    detail_font = _font(max(6, int(short / 21)))
    band_top = _draw_panel(image, [LABEL], label_font, 0, (0, 0, 0, 200))
    detail = _detail_lines(spec)
    detail_size = getattr(detail_font, "size", 10)
    detail_height = int(detail_size * 1.25) * len(detail) + 2 * max(2, int(detail_size * 0.4))
    body_size = getattr(body_font, "size", 10)
    room = h - band_top - detail_height - int(body_size * 1.2)
    max_lines = max(1, room // int(body_size * 1.25) - 1)
    chars = max(8, int(w / max(1.0, body_font.getlength("abcdefghij") / 10)) - 2)
    prompt_lines = _text_lines(spec, chars, min(max_lines, 8))
    prompt_top = band_top + int(body_size * 0.6)
    prompt_bottom = _draw_panel(image, prompt_lines, body_font, prompt_top, (0, 0, 0, 110))
    _draw_panel(image, detail, detail_font, h - detail_height, (0, 0, 0, 170))
    _draw_key(image, spec, prompt_bottom, h - detail_height)
    return image


def _draw_key(image: Image.Image, spec: RenderSpec, top: int, bottom: int) -> None:
    """The most swept parameters in large type between the panels, when there is room."""
    w, _ = image.size
    key = f"cfg {spec.guidance:g} | {spec.steps} steps"
    if spec.loras:
        key += " | " + " ".join(f"{scale:g}" for _, scale in spec.loras[:3])
    size = max(6, int(min(image.size) / 9))
    length = _font(size).getlength(key)
    if length > w * 0.92:  # shrink to fit rather than truncate
        size = max(6, int(size * w * 0.92 / length))
    font = _font(size)
    if bottom - top < size * 1.4:
        return
    key = _fit(key, font, w * 0.96)
    draw = ImageDraw.Draw(image)
    width = font.getlength(key)
    xy = ((w - width) / 2, (top + bottom) / 2 - size * 0.6)
    stroke = max(1, size // 14)
    draw.text(xy, key, fill=(255, 255, 255), font=font, stroke_width=stroke, stroke_fill=(0, 0, 0))


def canvas_size(width: int, height: int) -> tuple[int, int]:
    """The size actually drawn for a requested size (capped at RENDER_MAX_SIDE)."""
    scale = min(1.0, RENDER_MAX_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def source_size(data: bytes) -> tuple[int, int]:
    """The (width, height) of an input image's bytes."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    return int(width), int(height)


def _from_source(spec: RenderSpec, drawn: Image.Image) -> Image.Image:
    """Image-to-image: the input image at the drawn size with the placeholder blended over it
    by `strength`; inpainting: that only where the mask is white, the input image elsewhere."""
    assert spec.source is not None
    with Image.open(io.BytesIO(spec.source)) as opened:
        source = opened.convert("RGB")
    if source.size != drawn.size:
        source = source.resize(drawn.size, Image.Resampling.BILINEAR)
    blended = Image.blend(source, drawn, max(0.0, min(1.0, spec.strength)))
    if spec.mask is None:
        return blended
    with Image.open(io.BytesIO(spec.mask)) as opened:
        mask = opened.convert("L")
    if mask.size != drawn.size:
        mask = mask.resize(drawn.size, Image.Resampling.NEAREST)
    mask = mask.point(lambda level: 255 if level >= 128 else 0)
    return Image.composite(blended, source, mask)


def render_image(spec: RenderSpec) -> bytes:
    """Encode the placeholder image for ``spec``: same spec, same bytes."""
    size = (spec.width, spec.height)
    if spec.black:
        image = Image.new("RGB", size, (0, 0, 0))
    else:
        image = _draw_canvas(spec, canvas_size(*size))
        if spec.source is not None:
            image = _from_source(spec, image)
        if image.size != size:
            image = image.resize(size, Image.Resampling.BILINEAR)
    out = io.BytesIO()
    if spec.output_format == "png":
        image.save(out, format="PNG", compress_level=1)
    else:
        image.save(out, format="JPEG", quality=88)
    return out.getvalue()


def content_type(output_format: str) -> str:
    """The MIME type of an output format."""
    return "image/png" if output_format == "png" else "image/jpeg"
